// say(): PlaybackReady/PlaybackStarted (with a positive duration)/PlaybackFinished without error.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.addEventListener(CallEvents.Connected, function () {
    call.say("Hello! This is an automated message from the compatibility suite.", Language.US_ENGLISH_FEMALE);
  });
  call.addEventListener(CallEvents.PlaybackStarted, function (ev) {
    Logger.write("PlaybackStarted duration>0: " + (typeof ev.duration === "number" && ev.duration > 0));
  });
  call.addEventListener(CallEvents.PlaybackFinished, function (ev) {
    Logger.write("PlaybackFinished error: " + (ev.error ? ev.error : "none"));
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
  call.answer();
});
