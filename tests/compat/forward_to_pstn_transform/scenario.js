// The one-liner from the docs: forward every call to +1<dialled number>.
VoxEngine.forwardCallToPSTN(function (number) { return "+1" + number; }, function (inbound, outbound) {
  Logger.write("forwarded " + inbound.number() + " -> " + outbound.number() +
    " callerid " + outbound.callerid() + " (" + outbound.clientType() + ")");
  setTimeout(function () { outbound.hangup(); }, 1000);
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
