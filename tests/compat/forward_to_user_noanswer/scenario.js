// forwardCallToUser when the user never picks up: Failed 408 after 60 s, then the session ends.
var t0 = 0;
VoxEngine.addEventListener(AppEvents.Started, function () { t0 = Date.now(); });
VoxEngine.forwardCallToUser(function () { Logger.write("unexpected: established"); });
VoxEngine.addEventListener(AppEvents.Terminating, function () {
  Logger.write("Terminating after " + Math.round((Date.now() - t0) / 1000) + " s");
});
