// sendDigits with 'p' pauses (like dialling an extension after a greeting) from a callPSTN-style leg.
var got = [];
VoxEngine.addEventListener(AppEvents.Started, function () {
  if (VoxEngine.customData() !== "dialer") return;
  var leg = VoxEngine.callConference("ext-room", "200", "Dialer");
  leg.addEventListener(CallEvents.Connected, function () { leg.sendDigits("5p*0"); });
  leg.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.answer();
  e.call.handleTones(true);
  e.call.addEventListener(CallEvents.ToneReceived, function (ev) {
    got.push(ev.tone);
    if (got.length === 3) {
      Logger.write("received " + got.join(""));
      e.call.hangup();
    }
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
