// playSoundAndHangup with a URL that cannot be fetched offline: the call is answered and then hung up.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.addEventListener(CallEvents.Connected, function () { Logger.write("Connected"); });
  e.call.addEventListener(CallEvents.PlaybackFinished, function (ev) {
    Logger.write("PlaybackFinished error=" + (ev.error ? "yes" : "no"));
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { Logger.write("Disconnected"); });
});
VoxEngine.playSoundAndHangup("http://127.0.0.1:9/closed/sorry.mp3");
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
