// voximplant/conference style: createConference() with no arguments, the caller mixed in, muted, unmuted.
require(Modules.Conference);
var conf = null;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  if (conf === null) {
    conf = VoxEngine.createConference();
    Logger.write("conference id is a string: " + (typeof conf.id() === "string"));
  }
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () {
    VoxEngine.sendMediaBetween(e.call, conf);
    Logger.write("caller in conference");
    setTimeout(function () { e.call.stopMediaTo(conf); Logger.write("muted"); }, 1000);
    setTimeout(function () { e.call.sendMediaTo(conf); Logger.write("unmuted"); }, 2000);
    setTimeout(function () { VoxEngine.stopMediaBetween(e.call, conf); e.call.hangup(); }, 3000);
  });
  e.call.addEventListener(CallEvents.Disconnected, function () {
    VoxEngine.destroyConference(conf);
    Logger.write("destroyed");
    VoxEngine.terminate();
  });
});
