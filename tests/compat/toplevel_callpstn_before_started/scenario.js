// Top-level code dials before AppEvents.Started; the call proceeds once the session runs.
Logger.write("top level");
var call = VoxEngine.callPSTN("+78125550100", "+78125550000");
call.addEventListener(CallEvents.Connected, function () {
  Logger.write("Connected " + call.number());
  call.hangup();
});
call.addEventListener(CallEvents.Disconnected, function () {
  Logger.write("Disconnected");
  VoxEngine.terminate();
});
VoxEngine.addEventListener(AppEvents.Started, function () {
  Logger.write("Started, call state " + call.state());
});
