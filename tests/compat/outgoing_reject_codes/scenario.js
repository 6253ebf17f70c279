// Several refusals: 603 decline, 480 unavailable, 404 not found; each gives Failed with its code.
var numbers = ["+15550000603", "+15550000480", "+15550000404"];
var done = 0;
VoxEngine.addEventListener(AppEvents.Started, function () {
  numbers.forEach(function (n) {
    var call = VoxEngine.callPSTN(n, "+15550000000");
    call.addEventListener(CallEvents.Failed, function (e) {
      Logger.write(n + " Failed " + e.code);
      if (++done === numbers.length) VoxEngine.terminate();
    });
  });
});
