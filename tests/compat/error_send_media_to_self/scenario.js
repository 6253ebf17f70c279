// Sending a call's media to itself is refused with an Error.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, () => {
    try {
      call.sendMediaTo(call);
      Logger.write("no error (wrong)");
    } catch (err) {
      Logger.write(`sendMediaTo(self): ${err.name}`);
    }
    try {
      VoxEngine.sendMediaBetween(call, call);
      Logger.write("no error (wrong)");
    } catch (err) {
      Logger.write(`sendMediaBetween(self, self): ${err.name}`);
    }
    call.hangup();
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
