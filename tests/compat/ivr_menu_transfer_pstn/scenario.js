// Press 1 for sales: the IVR dials a PSTN number and bridges it with sendMediaBetween.
var inbound, outbound;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  inbound = e.call;
  inbound.answer();
  inbound.addEventListener(CallEvents.Connected, function () {
    inbound.handleTones(true);
    inbound.say("Press 1 for sales, 2 for support.", Language.US_ENGLISH_MALE);
  });
  inbound.addEventListener(CallEvents.ToneReceived, function (ev) {
    Logger.write("choice " + ev.tone);
    inbound.handleTones(false);
    inbound.stopPlayback();
    var number = ev.tone === "1" ? "+18005550101" : "+18005550102";
    outbound = VoxEngine.callPSTN(number, e.destination);
    outbound.addEventListener(CallEvents.Connected, function () {
      Logger.write("agent " + outbound.number() + " connected");
      VoxEngine.sendMediaBetween(inbound, outbound);
    });
    outbound.addEventListener(CallEvents.Disconnected, function () {
      Logger.write("agent hung up");
      inbound.hangup();
    });
  });
  inbound.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("caller disconnected");
    VoxEngine.terminate();
  });
});
