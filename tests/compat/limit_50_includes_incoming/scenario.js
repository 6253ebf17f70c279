// The incoming call counts towards the 50 attempts: only 49 outgoing attempts succeed.
var n = 0;
function dial() {
  var k = ++n;
  var c = VoxEngine.callPSTN("+15556660000", "+15556660001");
  c.addEventListener(CallEvents.Failed, function (e) {
    if (e.code === 486) { dial(); return; }
    Logger.write("outgoing attempt " + k + " Failed " + e.code);
    VoxEngine.terminate();
  });
}
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, dial);
});
