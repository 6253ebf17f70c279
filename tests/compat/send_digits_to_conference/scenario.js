// sendDigits on an outgoing leg; the far side (a conference session running this same script)
// receives them as ToneReceived.
var got = "";
VoxEngine.addEventListener(AppEvents.Started, function () {
  if (VoxEngine.customData() !== "dialer") return;
  var leg = VoxEngine.callConference("dtmf-room", "100", "Dialer");
  leg.addEventListener(CallEvents.Connected, function () {
    Logger.write("dialer: sending 19#");
    leg.sendDigits("19#");
  });
  leg.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("dialer: done");
    VoxEngine.terminate();
  });
});
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.answer();
  e.call.handleTones(true);
  e.call.addEventListener(CallEvents.ToneReceived, function (ev) {
    got += ev.tone;
    if (ev.tone === "#") {
      Logger.write("room: received " + got);
      e.call.hangup();
    }
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
