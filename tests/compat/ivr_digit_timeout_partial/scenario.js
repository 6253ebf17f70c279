// The caller types two digits and stops: the inter-digit timer (2.5 s) ends input.
var call, digits = "", timer = null, startedAt;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  call = e.call;
  call.addEventListener(CallEvents.Connected, function () {
    startedAt = Date.now();
    call.handleTones(true);
  });
  call.addEventListener(CallEvents.ToneReceived, function (ev) {
    digits += ev.tone;
    clearTimeout(timer);
    timer = setTimeout(function () {
      Logger.write("timeout with '" + digits + "' at " + Math.round((Date.now() - startedAt) / 1000) + " s");
      call.hangup();
    }, 2500);
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
  call.answer();
});
