// Modules.Recorder: a recorder fed by the call; Started with a URL, Stopped after stop().
require(Modules.Recorder);
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.answer();
  call.addEventListener(CallEvents.Connected, function () {
    var rec = VoxEngine.createRecorder({ name: "compat" });
    rec.addEventListener(RecorderEvents.Started, function (ev) {
      Logger.write(ev.name + " url ok: " + (typeof ev.url === "string" && ev.url.length > 0));
      setTimeout(function () { rec.stop(); }, 2000);
    });
    rec.addEventListener(RecorderEvents.Stopped, function (ev) {
      Logger.write(ev.name);
      call.hangup();
    });
    call.sendMediaTo(rec);
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
