// Classic callback IVR: greet, collect a 4-digit PIN with an inter-digit timer, confirm, hang up.
var call, digits = "", timer = null;

function finish(reason) {
  call.removeEventListener(CallEvents.ToneReceived, onTone);
  Logger.write("input complete (" + reason + "): " + digits);
  call.say("Thank you.", Language.US_ENGLISH_FEMALE);
  call.addEventListener(CallEvents.PlaybackFinished, function onBye(e) {
    call.removeEventListener(CallEvents.PlaybackFinished, onBye);
    Logger.write("goodbye finished, hanging up");
    call.hangup();
  });
}

function onTone(e) {
  Logger.write("ToneReceived " + e.tone);
  if (timer) clearTimeout(timer);
  digits += e.tone;
  if (digits.length === 4) { finish("length"); return; }
  timer = setTimeout(function () { finish("timeout"); }, 3000);
}

VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  call = e.call;
  call.addEventListener(CallEvents.Connected, function () {
    call.handleTones(true);
    call.addEventListener(CallEvents.ToneReceived, onTone);
  });
  call.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("Disconnected");
    VoxEngine.terminate();
  });
  call.answer();
});
