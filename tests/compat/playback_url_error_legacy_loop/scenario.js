// Legacy startPlayback(url, true): an unreachable URL gives PlaybackFinished with an error, never Started.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, function () {
    call.startPlayback("http://127.0.0.1:9/music/hold.mp3", true);
  });
  call.addEventListener(CallEvents.PlaybackStarted, function () { Logger.write("unexpected PlaybackStarted"); });
  call.addEventListener(CallEvents.PlaybackFinished, function (ev) {
    Logger.write(ev.name + " has error: " + (typeof ev.error === "string" && ev.error.length > 0));
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
