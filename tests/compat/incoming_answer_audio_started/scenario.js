// answer() leads to Connected and AudioStarted on the incoming call; the idiom answer(null, {scheme}) works.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var seen = [];
  e.call.addEventListener(CallEvents.AudioStarted, function (ev) { seen.push(ev.name); });
  e.call.addEventListener(CallEvents.Connected, function (ev) {
    seen.push(ev.name);
    setTimeout(function () {
      Logger.write("seen: " + seen.slice().sort().join(", "));
      e.call.hangup();
    }, 1000);
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
  e.call.answer(null, { scheme: e.scheme });
});
