// handleTones is off by default: no ToneReceived until handleTones(true) is called.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.ToneReceived, (ev) => Logger.write(`tone ${ev.tone} type=${ev.type}`));
  call.addEventListener(CallEvents.Connected, () => {
    // keys arrive at 1 s, 1.5 s, 3 s, 3.5 s
    setTimeout(() => { Logger.write("enabling tones"); call.handleTones(true); }, 2200);
    setTimeout(() => call.hangup(), 5000);
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.answer();
});
