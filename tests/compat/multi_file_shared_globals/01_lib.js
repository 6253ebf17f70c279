// Library file (like voximplant/conference's VoxConference.js): sloppy-mode implicit globals.
counter = 0;
function Greeter(prefix) { this.prefix = prefix; }
Greeter.prototype.greet = function (name) { counter++; return this.prefix + ", " + name + "!"; };
var SETTINGS = { lang: "en", timeoutMs: 1500 };
