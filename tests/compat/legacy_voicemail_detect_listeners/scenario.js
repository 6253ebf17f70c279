// Old outbound-dialer code: legacy detect* methods and Voicemail* listeners must not break anything.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var call = VoxEngine.callPSTN("+15553334444", "+15553330000");
  call.addEventListener(CallEvents.VoicemailToneDetected, function () { Logger.write("voicemail tone"); });
  call.addEventListener(CallEvents.VoicemailToneNotDetected, function () { Logger.write("no voicemail tone"); });
  call.addEventListener(CallEvents.Connected, function () {
    Logger.write("Connected; detectVoicemailTone is " + typeof call.detectVoicemailTone);
    call.detectVoicemailTone();
    call.detectProgressTone(true);
    setTimeout(function () { call.hangup(); }, 1000);
  });
  call.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("Disconnected");
    VoxEngine.terminate();
  });
  Logger.write("legacy CallEvents defined: " + (typeof CallEvents.VoicemailToneDetected === "string"));
});
