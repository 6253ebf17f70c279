// 3 active + 32 queued HTTP requests are accepted; the 36th throws. Every accepted one calls back.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var callbacks = 0, accepted = 0;
  for (var i = 1; i <= 36; i++) {
    try {
      Net.httpRequest("http://127.0.0.1:1/r" + i, function (r) {
        if (r.code < 0) callbacks++;
        if (callbacks === accepted) {
          Logger.write("callbacks with a negative code: " + callbacks);
          VoxEngine.terminate();
        }
      }, { timeout: 5 });
      accepted++;
    } catch (err) {
      Logger.write("request " + i + " threw: " + err.message);
    }
  }
  Logger.write("accepted " + accepted);
});
