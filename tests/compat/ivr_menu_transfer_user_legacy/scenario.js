// An old PBX-style menu: dial extension 2 -> positional callUser(username, callerid, displayName, headers).
var inbound;
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  inbound = e.call;
  inbound.answer();
  inbound.addEventListener(CallEvents.Connected, function () { inbound.handleTones(true); });
  inbound.addEventListener(CallEvents.ToneReceived, function (ev) {
    var user = ev.tone === "2" ? "reception" : "operator";
    Logger.write("dialing user " + user);
    var leg = VoxEngine.callUser(user, inbound.callerid(), "Front desk", {"X-Ivr": "menu"});
    Logger.write("leg clientType=" + leg.clientType() + " number=" + leg.number());
    leg.addEventListener(CallEvents.Connected, function (c) {
      Logger.write(c.call.number() + " answered");
      VoxEngine.sendMediaBetween(inbound, leg);
      setTimeout(function () { leg.hangup(); }, 1000);
    });
    leg.addEventListener(CallEvents.Disconnected, function () {
      Logger.write("leg Disconnected");
      inbound.hangup();
    });
  });
  inbound.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
});
