// The next file of the rule is sloppy: implicit globals work.
implicitGlobal = "ok";
Logger.write("sloppy file: " + implicitGlobal + " " + typeof globalThis.implicitGlobal);
VoxEngine.terminate();
