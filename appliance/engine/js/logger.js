// Logger and console: both write lines to the session log (and to stdout in the harness).
"use strict";
(function (global) {
  const vox = global.__vox;

  function write(message) {
    let text = String(message);
    const max = vox.limits.logMessageChars;
    if (text.length > max) {
      text = `${text.slice(0, max)} [cut: Logger messages are limited to ${max} characters]`;
    }
    vox.log(text, false);
  }

  function format(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
    if (value !== null && typeof value === "object") {
      try {
        return JSON.stringify(value);
      } catch (e) {
        return String(value);
      }
    }
    return String(value);
  }
  const line = (...args) => write(args.map(format).join(" "));

  let hideTones = false;
  global.Logger = {
    write,
    hideTones(flag) {
      hideTones = !!flag;
      vox.send({ op: "hideTones", value: hideTones });
    },
  };
  global.console = { log: line, info: line, warn: line, error: line, debug: line, trace: line };
  global.trace = line;
})(globalThis);
