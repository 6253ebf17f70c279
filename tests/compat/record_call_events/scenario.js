// call.record(): RecordStarted with a URL, RecordStopped (with the same URL) after Disconnected.
var startedUrl;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, function () {
    call.record();
    call.say("This call is recorded.");
  });
  call.addEventListener(CallEvents.RecordStarted, function (ev) {
    startedUrl = ev.url;
    Logger.write("RecordStarted url is a string: " + (typeof ev.url === "string" && ev.url.length > 0));
  });
  call.addEventListener(CallEvents.PlaybackFinished, function () { call.hangup(); });
  call.addEventListener(CallEvents.Disconnected, function () { Logger.write("Disconnected"); });
  call.addEventListener(CallEvents.RecordStopped, function (ev) {
    Logger.write("RecordStopped same url: " + (ev.url === startedUrl));
    VoxEngine.terminate();
  });
});
