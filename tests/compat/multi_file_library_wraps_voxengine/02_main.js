VoxEngine.addEventListener(AppEvents.Started, function () {
  var c = VoxEngine.callPSTN("+15551112222", "+15551110000");
  c.addEventListener(CallEvents.Connected, function () { Logger.write("connected"); c.hangup(); });
  c.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
