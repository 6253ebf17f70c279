// Prompts chained in PlaybackFinished handlers that remove themselves (as in voximplant/pbx).
require(Modules.Player);
var prompts = ["Welcome to the demo.", "Your call is important to us.", "Goodbye."];
var call;
function playNext(i) {
  if (i >= prompts.length) { call.hangup(); return; }
  var handler = function (e) {
    call.removeEventListener(CallEvents.PlaybackFinished, handler);
    Logger.write("finished prompt " + i + (e.error ? " with error" : ""));
    playNext(i + 1);
  };
  call.addEventListener(CallEvents.PlaybackFinished, handler);
  call.say(prompts[i], Language.UK_ENGLISH_FEMALE);
}
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  call = e.call;
  call.addEventListener(CallEvents.Connected, function () { playNext(0); });
  call.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("Disconnected");
    VoxEngine.terminate();
  });
  call.answer();
});
