// easyprocess-era code ends the session with JSession.close(); JSession_GC is a harmless helper.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () {
    JSession_GC();
    Logger.write("left memory is a number: " + (typeof JSession_getLeftMemBytes() === "number"));
    JSession.close();
  });
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
VoxEngine.addEventListener(AppEvents.Terminated, function () { Logger.write("Terminated"); });
