// terminate() does not abort the running block; timers never fire afterwards; Terminating then Terminated.
VoxEngine.addEventListener(AppEvents.Started, function () {
  setTimeout(function () { Logger.write("timer fired (must not happen)"); }, 10);
  VoxEngine.terminate();
  Logger.write("code after terminate() still runs");
});
VoxEngine.addEventListener(AppEvents.Terminating, function (e) {
  Logger.write("Terminating systemError=" + !!e.systemError);
  setTimeout(function () { Logger.write("timer in Terminating (must not happen)"); }, 10);
});
VoxEngine.addEventListener(AppEvents.Terminated, function (e) {
  Logger.write("Terminated systemError=" + !!e.systemError);
});
