// forwardCallToPSTN with no transform: the dialled number is used as is; the callback sees both legs.
VoxEngine.forwardCallToPSTN(null, (inbound, outbound) => {
  Logger.write(`to ${outbound.number()} incoming=${outbound.incoming()} in.state=${inbound.state()}`);
  inbound.hangup();
});
VoxEngine.addEventListener(AppEvents.Terminating, () => Logger.write("Terminating"));
