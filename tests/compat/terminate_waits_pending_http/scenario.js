// terminate() waits for pending HTTP requests and runs their callbacks before Terminating;
// Terminating may make one more request, and Terminated follows when it completes.
VoxEngine.addEventListener(AppEvents.Started, function () {
  Net.httpRequest("http://127.0.0.1:1/pending", function (r) {
    Logger.write("pending request callback, code<0: " + (r.code < 0));
  });
  VoxEngine.terminate();
  Logger.write("terminate() called");
});
VoxEngine.addEventListener(AppEvents.Terminating, function () {
  Logger.write("Terminating");
  Net.httpRequest("http://127.0.0.1:1/final-report", function (r) {
    Logger.write("final report callback, code<0: " + (r.code < 0));
  });
});
VoxEngine.addEventListener(AppEvents.Terminated, function () { Logger.write("Terminated"); });
