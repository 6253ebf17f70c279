// callConference(id) from the main session; the same script runs in the conference session,
// which sees the joining call as CallAlerting with e.destination = the conference id.
require(Modules.Conference);
var isConferenceSession = false;
var conf;
VoxEngine.addEventListener(AppEvents.Started, function () {
  if (VoxEngine.customData() === "main") {
    Logger.write("main: started");
    var c = VoxEngine.callConference("room-42", "+15550001111", "Main session");
    c.addEventListener(CallEvents.Connected, function () {
      Logger.write("main: conference leg connected");
      setTimeout(function () { c.hangup(); }, 2000);
    });
    c.addEventListener(CallEvents.Disconnected, function () {
      Logger.write("main: conference leg disconnected");
      VoxEngine.terminate();
    });
  }
});
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  isConferenceSession = true;
  Logger.write("conf: CallAlerting destination=" + e.destination + " callerid=" + e.callerid);
  if (!conf) conf = VoxEngine.createConference();
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () { VoxEngine.sendMediaBetween(e.call, conf); });
  e.call.addEventListener(CallEvents.Disconnected, function () {
    Logger.write("conf: participant left");
    VoxEngine.terminate();
  });
});
