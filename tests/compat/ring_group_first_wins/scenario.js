// Ring group: call three users at once; the first to answer gets the caller, the others are hung up.
var inbound, legs = [], winner = null;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  inbound = e.call;
  ["anna", "boris", "carla"].forEach(function (user) {
    var leg = VoxEngine.callUser({ username: user, callerid: e.callerid, displayName: "Ring group" });
    legs.push(leg);
    leg.addEventListener(CallEvents.Failed, function (ev) { Logger.write(user + " Failed " + ev.code); });
    leg.addEventListener(CallEvents.Connected, function () {
      if (winner) { Logger.write(user + " answered too late"); leg.hangup(); return; }
      winner = leg;
      Logger.write(user + " wins");
      legs.forEach(function (other) { if (other !== leg && other.state() === "PROGRESSING") other.hangup(); });
      inbound.answer();
    });
    leg.addEventListener(CallEvents.Disconnected, function () {
      Logger.write(user + " Disconnected");
      if (leg === winner) inbound.hangup();
    });
  });
  inbound.addEventListener(CallEvents.Connected, function () {
    Logger.write("caller connected to " + winner.number());
    VoxEngine.sendMediaBetween(inbound, winner);
  });
  inbound.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
