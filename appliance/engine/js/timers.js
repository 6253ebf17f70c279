// setTimeout / setInterval. Python keeps the clock (virtual in the harness) and sends "timer"
// events; the callbacks stay here.
"use strict";
(function (global) {
  const vox = global.__vox;
  const timers = new Map(); // id -> {callback, repeat}

  function schedule(callback, delay, repeat) {
    if (typeof callback !== "function") {
      throw new TypeError(`${repeat ? "setInterval" : "setTimeout"}: the callback is not a function`);
    }
    if (timers.size >= vox.limits.maxTimers) {
      throw new RangeError(`too many active timers: a session may have at most ${vox.limits.maxTimers}`);
    }
    let ms = Number(delay);
    if (!Number.isFinite(ms) || ms < 0) ms = 0;
    ms = Math.min(ms, 2147483647);
    if (repeat) ms = Math.max(ms, vox.limits.minIntervalMs);
    const id = vox.newId();
    timers.set(id, { callback, repeat });
    vox.send({ op: "timer", id, ms, repeat });
    return id;
  }

  function clear(id) {
    if (timers.delete(id)) vox.send({ op: "untimer", id });
  }

  vox.handlers.timer = (event) => {
    const timer = timers.get(event.id);
    if (timer === undefined) return;
    if (!timer.repeat) timers.delete(event.id);
    timer.callback();
  };

  global.setTimeout = (callback, delay) => schedule(callback, delay, false);
  global.setInterval = (callback, delay) => schedule(callback, delay, true);
  global.clearTimeout = clear;
  global.clearInterval = clear;
})(globalThis);
