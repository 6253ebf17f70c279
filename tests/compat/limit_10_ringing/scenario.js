// At most 10 outgoing calls may be ringing at once: the 11th fails with 403 at once,
// the first ten fail with 408 after 60 s.
var t0, codes = {};
VoxEngine.addEventListener(AppEvents.Started, function () {
  t0 = Date.now();
  for (var i = 1; i <= 11; i++) {
    (function (i) {
      var call = VoxEngine.callPSTN("+1555888000" + (i % 10) + (i > 9 ? "x" : ""), "+15558880000");
      call.addEventListener(CallEvents.Failed, function (e) {
        var s = Math.round((Date.now() - t0) / 1000);
        var key = e.code + " after " + s + " s";
        codes[key] = (codes[key] || 0) + 1;
        if (e.code === 403) Logger.write("call " + i + " Failed 403 after " + s + " s");
      });
    })(i);
  }
  setTimeout(function () {
    Object.keys(codes).sort().forEach(function (k) { Logger.write(codes[k] + " x " + k); });
    VoxEngine.terminate();
  }, 70000);
});
