// easyProcess with a busy destination: the outgoing leg fails with 486 and the session ends.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const out = VoxEngine.callPSTN("+14085550112", e.callerid);
  out.addEventListener(CallEvents.Failed, (f) => Logger.write(`out Failed ${f.code}; in is ${e.call.state()}`));
  e.call.addEventListener(CallEvents.Connected, () => Logger.write("unexpected: caller answered"));
  VoxEngine.easyProcess(e.call, out);
});
VoxEngine.addEventListener(AppEvents.Terminating, (e) => Logger.write(`Terminating systemError=${!!e.systemError}`));
