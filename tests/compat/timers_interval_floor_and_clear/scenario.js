// setInterval below 100 ms is raised to 100 ms; clearTimeout/clearInterval cancel; order by due time.
VoxEngine.addEventListener(AppEvents.Started, function () {
  var ticks = 0;
  var iv = setInterval(function () { ticks++; }, 10);
  setTimeout(function () {
    clearInterval(iv);
    Logger.write("ticks in 1050 ms with a 10 ms interval: " + ticks);
  }, 1050);
  var cancelled = setTimeout(function () { Logger.write("cancelled timer fired (wrong)"); }, 500);
  clearTimeout(cancelled);
  setTimeout(function () { Logger.write("300 ms"); }, 300);
  setTimeout(function () { Logger.write("200 ms"); }, 200);
  setTimeout(function () { Logger.write("0 ms"); });
  setTimeout(function () {
    Logger.write("ticks after clearInterval unchanged: " + ticks);
    VoxEngine.terminate();
  }, 2000);
  Logger.write("ids are numbers: " + (typeof iv === "number" && typeof cancelled === "number"));
});
