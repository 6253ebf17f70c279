// A local conference: two outgoing PSTN calls mixed with sendMediaBetween(call, conference).
require(Modules.Conference);
var conf, joined = 0, left = 0;
VoxEngine.addEventListener(AppEvents.Started, function () {
  conf = VoxEngine.createConference({ hd_audio: false });
  conf.addEventListener(ConferenceEvents.Started, function (e) {
    Logger.write("Conference " + e.name + " same=" + (e.conference === conf));
  });
  conf.addEventListener(ConferenceEvents.Stopped, function (e) {
    Logger.write("Conference " + e.name);
    VoxEngine.terminate();
  });
  ["+4930555001", "+4930555002"].forEach(function (n) {
    var c = VoxEngine.callPSTN(n, "+4930555000");
    c.addEventListener(CallEvents.Connected, function () {
      VoxEngine.sendMediaBetween(c, conf);
      Logger.write("joined " + n + " (" + (++joined) + ")");
    });
    c.addEventListener(CallEvents.Disconnected, function () {
      Logger.write("left " + n);
      if (++left === 2) conf.stop();
    });
  });
});
