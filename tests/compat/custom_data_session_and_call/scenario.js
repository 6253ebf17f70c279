// VoxEngine.customData() from --custom-data (a JSON string, as StartScenarios passes it),
// set again by the script; Call.customData() is independent.
var data = JSON.parse(VoxEngine.customData());
Logger.write("top level: customer " + data.customer + ", lang " + data.lang);
VoxEngine.addEventListener(AppEvents.Started, function () {
  Logger.write("Started: " + VoxEngine.customData());
  VoxEngine.customData("step=2");
  Logger.write("after set: " + VoxEngine.customData());
  var call = VoxEngine.callPSTN(data.phone, "+10000000000");
  call.customData("leg-a");
  call.addEventListener(CallEvents.Connected, function () {
    Logger.write("call.customData=" + call.customData() + " session=" + VoxEngine.customData());
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
