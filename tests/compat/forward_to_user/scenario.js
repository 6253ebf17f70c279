// forwardCallToUser treats the dialled number as a username.
VoxEngine.forwardCallToUser(function (inbound, outbound) {
  Logger.write("user leg " + outbound.clientType() + " " + outbound.number() + " callerid " + outbound.callerid());
  inbound.hangup();
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
