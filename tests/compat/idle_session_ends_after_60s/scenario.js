// A session without calls ends by itself after 60 s.
var t0;
VoxEngine.addEventListener(AppEvents.Started, function () {
  t0 = Date.now();
  Logger.write("started, doing nothing");
  setTimeout(function () { Logger.write("30 s timer"); }, 30000);
});
VoxEngine.addEventListener(AppEvents.Terminating, function () {
  Logger.write("Terminating after " + Math.round((Date.now() - t0) / 1000) + " s");
});
