// A malformed URL gives code -2 (malformed URL) in the result, not an exception.
VoxEngine.addEventListener(AppEvents.Started, function () {
  Net.httpRequest("not a url at all", function (res) {
    Logger.write("code " + res.code);
    VoxEngine.terminate();
  });
});
