// After terminate() only Terminating and Terminated fire: no Disconnected for the live call.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () {
    Logger.write("connected; terminating");
    VoxEngine.terminate();
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { Logger.write("Disconnected (must not fire)"); });
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
VoxEngine.addEventListener(AppEvents.Terminated, function () { Logger.write("Terminated"); });
