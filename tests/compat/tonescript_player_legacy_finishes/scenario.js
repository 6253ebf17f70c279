// Legacy createToneScriptPlayer(script, loop=false): a 1.5 s beep finishes on its own.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, function () {
    var t = Date.now();
    var beep = VoxEngine.createToneScriptPlayer("1000@-10;1.5(1.5/0/1)", false);
    beep.addEventListener(PlayerEvents.PlaybackFinished, function (ev) {
      Logger.write("beep finished after ~" + Math.round((Date.now() - t) / 1000) + " s, error: " + (ev.error || "none"));
      call.hangup();
    });
    beep.sendMediaTo(call);
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
