// A TTS player created with a legacy Language constant and routed into the call.
require(Modules.Player);
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, function () {
    var player = VoxEngine.createTTSPlayer("Welcome to our hotline.", Language.UK_ENGLISH_MALE);
    player.addEventListener(PlayerEvents.Started, function (ev) {
      Logger.write(ev.name + " duration>0: " + (ev.duration > 0) + " same player: " + (ev.player === player));
    });
    player.addEventListener(PlayerEvents.PlaybackFinished, function (ev) {
      Logger.write(ev.name + " error: " + (ev.error || "none"));
      call.hangup();
    });
    player.sendMediaTo(call);
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
