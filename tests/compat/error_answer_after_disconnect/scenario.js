// answer() on a call that has already been disconnected throws a clear Error the script can catch.
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  e.call.addEventListener(CallEvents.Disconnected, function () {
    try {
      e.call.answer();
      Logger.write("no error (wrong)");
    } catch (err) {
      Logger.write("caught " + err.name + ", instanceof Error: " + (err instanceof Error) +
        ", has message: " + (typeof err.message === "string" && err.message.length > 0));
    }
    VoxEngine.terminate();
  });
  e.call.reject(603);
});
