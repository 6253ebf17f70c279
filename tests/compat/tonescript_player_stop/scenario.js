// A looping ToneScript ringback sent to the caller, stopped after 3 s: Stopped, not PlaybackFinished.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, () => {
    const player = VoxEngine.createToneScriptPlayer("440@-19,480@-19;*(2/4/1+2)", { loop: true });
    player.addEventListener(PlayerEvents.PlaybackFinished, () => Logger.write("unexpected PlaybackFinished"));
    player.addEventListener(PlayerEvents.Stopped, (ev) => {
      Logger.write(`${ev.name}`);
      call.hangup();
    });
    player.sendMediaTo(call);
    Logger.write(`player id is string: ${typeof player.id() === "string"}`);
    setTimeout(() => player.stop(), 3000);
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
