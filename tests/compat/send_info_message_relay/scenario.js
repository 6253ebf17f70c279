// The caller is forwarded with easyProcess to a conference session; that session sends a SIP INFO
// and a message to its caller, which the main session's outgoing leg receives (and easyProcess relays).
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  if (e.destination === "relay-room") {
    e.call.answer();
    e.call.addEventListener(CallEvents.Connected, function () {
      e.call.sendInfo("application/json", '{"step":1}', { "X-Info": "yes" });
      e.call.sendMessage("hello from the room");
      setTimeout(function () { e.call.hangup(); }, 1000);
    });
    e.call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
    return;
  }
  var leg = VoxEngine.callConference("relay-room", e.callerid, "Relay");
  leg.addEventListener(CallEvents.InfoReceived, function (ev) {
    Logger.write("main: InfoReceived " + ev.mimeType + " " + ev.body);
  });
  leg.addEventListener(CallEvents.MessageReceived, function (ev) {
    Logger.write("main: MessageReceived " + ev.text);
  });
  leg.addEventListener(CallEvents.Disconnected, function () { Logger.write("main: room hung up"); });
  VoxEngine.easyProcess(e.call, leg);
});
