// hangup() on an outgoing call that is still ringing gives Failed, not Disconnected.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var call = VoxEngine.callPSTN("+16505550124", "+16505550000");
  call.addEventListener(CallEvents.Ringing, function () {
    Logger.write("Ringing, hanging up");
    call.hangup();
  });
  call.addEventListener(CallEvents.Connected, function () { Logger.write("unexpected Connected"); });
  call.addEventListener(CallEvents.Disconnected, function () { Logger.write("unexpected Disconnected"); });
  call.addEventListener(CallEvents.Failed, function (e) {
    Logger.write("Failed, state=" + call.state());
    VoxEngine.terminate();
  });
});
