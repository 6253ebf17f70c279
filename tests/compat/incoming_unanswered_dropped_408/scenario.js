// The scenario never answers: the platform drops the incoming call after 60 s (internalCode 408).
var alertedAt;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  alertedAt = Date.now();
  Logger.write("alerting, not answering");
  e.call.addEventListener(CallEvents.Disconnected, function (ev) {
    Logger.write("Disconnected internalCode=" + ev.internalCode + " after " +
      Math.round((Date.now() - alertedAt) / 1000) + " s state=" + e.call.state());
    VoxEngine.terminate();
  });
});
