// A SequencePlayer of two TTS segments: Started once, PlaybackFinished once at the end.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, () => {
    const seq = VoxEngine.createSequencePlayer({
      segments: [
        { text: "First segment.", parameters: { voice: VoiceList.Default.en_US_Female } },
        { text: "Second segment.", parameters: { voice: VoiceList.Default.en_US_Male } },
      ],
    });
    let started = 0;
    seq.addEventListener(SequencePlayerEvents.Started, () => { started++; });
    seq.addEventListener(SequencePlayerEvents.PlaybackFinished, (ev) => {
      Logger.write(`${ev.name} started=${started} error=${ev.error || "none"}`);
      call.hangup();
    });
    seq.sendMediaTo(call);
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
