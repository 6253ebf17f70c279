// Third-party code registers listeners under names that do not exist (e.g. WebSocketEvents.Open,
// CallEvents.Foo): registering must not throw, and such listeners simply never run.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  try {
    e.call.addEventListener(CallEvents.NoSuchEvent, function () { Logger.write("never"); });
    VoxEngine.addEventListener(WebSocketEvents.Open, function () { Logger.write("never"); });
    Logger.write("registration ok");
  } catch (err) {
    Logger.write("threw: " + err.name);
  }
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, function () { e.call.hangup(); });
  e.call.addEventListener(CallEvents.Disconnected, function () { Logger.write("done"); VoxEngine.terminate(); });
});
