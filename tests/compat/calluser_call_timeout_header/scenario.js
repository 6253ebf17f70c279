// callUser with the special VI-CallTimeout header (seconds): an unanswered user fails after 20 s.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var t0 = Date.now();
  var c = VoxEngine.callUser({ username: "slowpoke", callerid: "100", extraHeaders: { "VI-CallTimeout": "20" } });
  c.addEventListener(CallEvents.Failed, function (e) {
    Logger.write("Failed " + e.code + " after " + Math.round((Date.now() - t0) / 1000) + " s");
    VoxEngine.terminate();
  });
});
