// easyProcess bridges the caller to a PSTN leg; when the far end hangs up the session ends.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var out = VoxEngine.callPSTN("+14085550111", e.callerid);
  [e.call, out].forEach(function (c, i) {
    var tag = i === 0 ? "in" : "out";
    ["Call.Ringing", "Call.Connected", "Call.Disconnected", "Call.Failed"].forEach(function (ev) {
      c.addEventListener(ev, function (x) { Logger.write(tag + " " + x.name + " " + c.state()); });
    });
  });
  VoxEngine.easyProcess(e.call, out, function (c1, c2) {
    Logger.write("established: in=" + c1.state() + " out=" + c2.state() + " out.number=" + c2.number());
  });
});
VoxEngine.addEventListener(AppEvents.Terminating, function () { Logger.write("Terminating"); });
VoxEngine.addEventListener(AppEvents.Terminated, function () { Logger.write("Terminated"); });
