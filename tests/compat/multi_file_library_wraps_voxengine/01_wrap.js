// A library that wraps a VoxEngine member (as easyprocess.js redefines the forwarding helpers).
var originalCallPSTN = VoxEngine.callPSTN;
VoxEngine.callPSTN = function (number, callerid, params) {
  Logger.write("[wrapper] dialing " + number);
  return originalCallPSTN.call(VoxEngine, number, callerid, params);
};
