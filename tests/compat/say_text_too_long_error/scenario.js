// Text over 1500 characters: PlaybackFinished with an error.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.addEventListener(CallEvents.Connected, function () {
    call.say(new Array(1602).join("a"));
  });
  call.addEventListener(CallEvents.PlaybackFinished, function (ev) {
    Logger.write("PlaybackFinished with error: " + !!ev.error);
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
  call.answer();
});
