// Conference.add() on a rule without the "video conference" switch: ConferenceError with code 102.
require(Modules.Conference);
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var conf = VoxEngine.createConference({ hd_audio: true });
  conf.addEventListener(ConferenceEvents.ConferenceError, function (ev) {
    Logger.write(ev.name + " code=" + ev.code);
    e.call.hangup();
  });
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () {
    try {
      conf.add({ call: e.call, mode: "FORWARD", direction: "BOTH", scheme: e.scheme, displayName: "guest" });
    } catch (err) {
      Logger.write("add() threw " + err.name);
      e.call.hangup();
    }
  });
  e.call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
