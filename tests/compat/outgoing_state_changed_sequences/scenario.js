// StateChanged on outgoing calls: answered then hung up, and refused.
var logs = { ok: [], busy: [] }, ended = 0;
function track(tag, call) {
  call.addEventListener(CallEvents.StateChanged, function (e) { logs[tag].push(e.oldState + "->" + e.newState); });
  var done = function () {
    setTimeout(function () {
      if (++ended === 2) {
        Logger.write("ok: " + logs.ok.join(" "));
        Logger.write("busy: " + logs.busy.join(" "));
        VoxEngine.terminate();
      }
    }, 100);
  };
  call.addEventListener(CallEvents.Disconnected, done);
  call.addEventListener(CallEvents.Failed, done);
}
VoxEngine.addEventListener(AppEvents.Started, function () {
  var ok = VoxEngine.callPSTN("+15550100001", "+15550100000");
  var busy = VoxEngine.callPSTN("+15550100002", "+15550100000");
  track("ok", ok);
  track("busy", busy);
  Logger.write("ids differ: " + (ok.id() !== busy.id()));
  ok.addEventListener(CallEvents.Connected, function () { ok.hangup(); });
});
