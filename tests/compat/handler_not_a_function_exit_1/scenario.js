// Registering a non-function handler does not throw at once; when the event fires, the session fails.
try {
  VoxEngine.addEventListener(AppEvents.Started, "onStarted");
  Logger.write("registered without error");
} catch (err) {
  Logger.write("threw at registration (wrong): " + err.name);
}
VoxEngine.addEventListener(AppEvents.Terminating, function (e) { Logger.write("Terminating systemError=" + e.systemError); });
