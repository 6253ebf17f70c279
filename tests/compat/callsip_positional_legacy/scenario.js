// Legacy positional callSIP(uri, callerid, displayName) and the object form with headers.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var a = VoxEngine.callSIP("sip:alice@pbx.example.org", "1001", "Front Desk");
  Logger.write("positional: clientType=" + a.clientType() + " callerid=" + a.callerid() +
    " displayName=" + a.displayName() + " state=" + a.state());
  var b = VoxEngine.callSIP("sip:bob@pbx.example.org", {
    callerid: "1002", displayName: "Back Office", headers: { "X-Campaign": "spring" }
  });
  Logger.write("object: callerid=" + b.callerid() + " displayName=" + b.displayName());
  var connected = 0;
  [a, b].forEach(function (c) {
    c.addEventListener(CallEvents.Connected, function () {
      Logger.write("connected " + (c === a ? "alice" : "bob"));
      if (++connected === 2) { a.hangup(); b.hangup(); VoxEngine.terminate(); }
    });
  });
});
