// A busy destination: Failed with code 486, never Connected or Disconnected.
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = VoxEngine.callPSTN("+442071838750", "+442071838751");
  call.addEventListener(CallEvents.Connected, () => Logger.write("unexpected Connected"));
  call.addEventListener(CallEvents.Disconnected, () => Logger.write("unexpected Disconnected"));
  call.addEventListener(CallEvents.Failed, (e) => {
    Logger.write(`Failed code=${e.code} state=${call.state()} same=${e.call === call}`);
    setTimeout(() => VoxEngine.terminate(), 100);
  });
});
