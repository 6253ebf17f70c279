// Answer an incoming call, hang it up from the script, and still wait for Disconnected.
var t0;
var transitions = [];
VoxEngine.addEventListener(AppEvents.Started, function (e) {
  t0 = Date.now();
  Logger.write("Started");
});
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  Logger.write("CallAlerting state=" + call.state());
  call.addEventListener(CallEvents.StateChanged, function (ev) {
    transitions.push(ev.oldState + "->" + ev.newState);
  });
  call.addEventListener(CallEvents.Connected, function (ev) {
    Logger.write("Connected " + ev.name + " state=" + call.state());
    setTimeout(function () {
      call.hangup();
      Logger.write("hangup() returned");
    }, 2000);
  });
  call.addEventListener(CallEvents.Disconnected, function (ev) {
    Logger.write("Disconnected " + ev.name + " same call=" + (ev.call === call) + " state=" + call.state());
    Logger.write("duration is a number: " + (typeof ev.duration === "number"));
    Logger.write("StateChanged so far: " + transitions.join(", "));
  });
  call.answer();
});
VoxEngine.addEventListener(AppEvents.Terminating, function (e) {
  Logger.write("Terminating " + e.name + " after ~" + Math.round((Date.now() - t0) / 1000) + " s");
});
VoxEngine.addEventListener(AppEvents.Terminated, function (e) {
  Logger.write("Terminated " + e.name);
});
