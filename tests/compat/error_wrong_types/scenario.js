// Wrong argument types give TypeError, a bad SIP code gives RangeError; the session carries on.
function attempt(label, fn) {
  try { fn(); Logger.write(label + ": no error"); }
  catch (err) { Logger.write(label + ": " + err.name); }
}
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  attempt("callSIP()", function () { VoxEngine.callSIP(); });
  attempt("callUser({})", function () { VoxEngine.callUser({}); });
  attempt("callConference('')", function () { VoxEngine.callConference("", "1", "x"); });
  attempt("answer(headers='x')", function () { call.answer("X-Bad-Header"); });
  attempt("reject(200)", function () { call.reject(200); });
  attempt("reject(700)", function () { call.reject(700); });
  Logger.write("state still " + call.state());
  call.reject(486);
  VoxEngine.terminate();
});
