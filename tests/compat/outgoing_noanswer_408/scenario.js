// Nobody answers: Failed 408 after 60 s of ringing.
VoxEngine.addEventListener(AppEvents.Started, async () => {
  const started = Date.now();
  const call = VoxEngine.callPSTN("+16505550123", "+16505550000");
  call.addEventListener(CallEvents.Ringing, () => Logger.write("Ringing"));
  const e = await new Promise((resolve) => call.addEventListener(CallEvents.Failed, resolve));
  Logger.write(`Failed code=${e.code} after ${Math.round((Date.now() - started) / 1000)} s`);
  VoxEngine.terminate();
});
