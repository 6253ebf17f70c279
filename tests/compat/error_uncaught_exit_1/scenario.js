// An uncaught error in a handler ends the session as a system error.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  Logger.write("about to fail");
  e.call.answer();
  undefinedFunctionCall();
  Logger.write("not reached");
});
VoxEngine.addEventListener(AppEvents.Terminating, function (e) { Logger.write("Terminating systemError=" + e.systemError); });
VoxEngine.addEventListener(AppEvents.Terminated, function (e) { Logger.write("Terminated systemError=" + e.systemError); });
