// startEarlyMedia() on the unanswered call, a prompt played as early media, then answer().
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.startEarlyMedia();
  Logger.write("early media, state " + call.state());
  call.say("Please hold while we connect you.", Language.US_ENGLISH_FEMALE);
  call.addEventListener(CallEvents.PlaybackFinished, function (ev) {
    Logger.write("prompt finished before answer, state " + call.state() + ", error: " + (ev.error || "none"));
    call.answer();
  });
  call.addEventListener(CallEvents.Connected, function () {
    Logger.write("Connected");
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
