// Main file: uses the classes and globals the library defined in the same global scope.
var g = new Greeter("Hello");
Logger.write(g.greet("world"));
Logger.write(g.greet("VoxEngine"));
Logger.write("counter=" + counter + " lang=" + SETTINGS.lang + " globalThis.counter=" + globalThis.counter);
VoxEngine.addEventListener(AppEvents.Started, function () {
  setTimeout(function () {
    Logger.write("after " + SETTINGS.timeoutMs + " ms: " + g.greet("timer") + " counter=" + counter);
    VoxEngine.terminate();
  }, SETTINGS.timeoutMs);
});
