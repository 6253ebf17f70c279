// Old scripts reject with the deprecated decline(); Disconnected fires at once, the session lives on.
var t0;
VoxEngine.addEventListener(AppEvents.Started, function () { t0 = Date.now(); });
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.addEventListener(CallEvents.Disconnected, function (ev) {
    Logger.write("Disconnected after " + Math.round((Date.now() - t0) / 1000) + " s state=" + ev.call.state());
  });
  e.call.addEventListener(CallEvents.Connected, function () { Logger.write("unexpected Connected"); });
  e.call.decline(486);
  Logger.write("declined");
});
VoxEngine.addEventListener(AppEvents.Terminating, function () {
  Logger.write("Terminating after " + Math.round((Date.now() - t0) / 1000) + " s");
});
