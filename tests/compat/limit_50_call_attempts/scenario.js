// At most 50 call attempts per session: 50 busy attempts in a row, then the 51st fails with 403.
var attempts = 0;
function dial() {
  attempts++;
  var n = attempts;
  var call = VoxEngine.callPSTN("+15557770000", "+15557770001");
  call.addEventListener(CallEvents.Failed, function (e) {
    if (e.code !== 486 || n > 49) Logger.write("attempt " + n + " Failed " + e.code);
    if (e.code === 486) dial(); else VoxEngine.terminate();
  });
}
VoxEngine.addEventListener(AppEvents.Started, dial);
