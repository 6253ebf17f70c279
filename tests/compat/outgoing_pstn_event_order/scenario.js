// An outgoing PSTN call: state on return, Ringing, AudioStarted, Connected, then a script hangup.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var call = VoxEngine.callPSTN("+12125550100", "+13105550199");
  Logger.write("returned state=" + call.state() + " incoming=" + call.incoming() +
    " number=" + call.number() + " callerid=" + call.callerid() + " clientType=" + call.clientType());
  [CallEvents.Ringing, CallEvents.AudioStarted, CallEvents.Connected, CallEvents.Disconnected, CallEvents.Failed]
    .forEach(function (name) {
      call.addEventListener(name, function (e) {
        Logger.write(e.name === "Call.Connected" || e.name === "Call.Disconnected" ? e.name + " state=" + call.state() : e.name);
        if (e.name === "Call.Connected") call.hangup();
        if (e.name === "Call.Disconnected") VoxEngine.terminate();
      });
    });
});
