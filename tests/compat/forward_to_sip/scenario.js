// forwardCallToSIP dials the incoming call's To URI.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  Logger.write("toURI " + e.toURI);
});
VoxEngine.forwardCallToSIP(function (inbound, outbound) {
  Logger.write("SIP leg " + outbound.clientType() + " incoming=" + outbound.incoming());
  outbound.hangup();
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
