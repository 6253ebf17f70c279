// stopPlayback() must not fire PlaybackFinished.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  let finished = 0;
  call.addEventListener(CallEvents.PlaybackFinished, () => { finished++; });
  call.addEventListener(CallEvents.PlaybackStarted, () => {
    Logger.write("PlaybackStarted; stopping in 500 ms");
    setTimeout(() => call.stopPlayback(), 500);
    setTimeout(() => {
      Logger.write(`PlaybackFinished count after stop: ${finished}`);
      call.hangup();
    }, 5000);
  });
  call.addEventListener(CallEvents.Connected, () => {
    call.say("This is a long announcement that will be interrupted by the scenario before it is over. " +
      "It keeps going for a while so that there is plenty of time to stop it.", { voice: VoiceList.Default.en_US_Male });
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.answer();
});
