// The session's end of the engine protocol. Runs first, before every other prelude file.
//
// JS never calls into the engine synchronously: API functions append commands to an outbox that
// Python drains after each turn (__voxDrain), and Python delivers every event through one
// function (__voxDispatch). The only synchronous host function, __voxHost, is a pure lookup or
// computation (hashes, encodings, time zones, symbol tables) that reads no session state.
"use strict";
(function (global) {
  const RealDate = global.Date;
  const hostFn = global.__voxHost;

  const vox = {
    limits: /*LIMITS*/ {},
    outbox: [],
    handlers: Object.create(null), // event type -> function(event), filled by the other files
    session: {}, // filled by the "init" event
    phase: "running", // running | terminating | terminated
    nextId: 1,

    send(op) {
      this.outbox.push(op);
    },
    newId() {
      return this.nextId++;
    },
    // A pure host computation; throws a JS Error (never a host failure) for refused input.
    host(op, ...args) {
      const answer = JSON.parse(hostFn(op, JSON.stringify(args)));
      if (answer.error !== undefined) {
        throw new (answer.type === "TypeError" ? TypeError : Error)(answer.error);
      }
      return answer.value;
    },
    // A line for the session log; system lines are the engine's own, not the script's output.
    log(text, system) {
      this.send({ op: "log", text: String(text), system: !!system });
    },
    lazy(target, name, build) {
      Object.defineProperty(target, name, {
        configurable: true,
        enumerable: true,
        get() {
          const value = build();
          Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: true });
          return value;
        },
        set(value) {
          Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: true });
        },
      });
    },
  };

  // Listeners of VoxEngine, Call, Player...: kept out of the objects so scripts see plain members.
  const registry = new WeakMap();
  vox.addListener = function (target, event, callback) {
    let byName = registry.get(target);
    if (!byName) {
      byName = new Map();
      registry.set(target, byName);
    }
    const name = String(event);
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name).push(callback);
  };
  vox.removeListener = function (target, event, callback) {
    const byName = registry.get(target);
    if (!byName) return;
    const name = String(event);
    if (callback === undefined) {
      byName.delete(name);
      return;
    }
    const list = byName.get(name);
    if (!list) return;
    const at = list.indexOf(callback);
    if (at >= 0) list.splice(at, 1);
  };
  // Calls every listener in order; returns the last value a listener returned (HttpRequest replies).
  vox.emit = function (target, event, payload) {
    const byName = registry.get(target);
    const list = byName && byName.get(event);
    let result;
    if (!list) return result;
    for (const callback of list.slice()) {
      if (typeof callback !== "function") {
        throw new TypeError(`the listener registered for ${event} is not a function`);
      }
      const value = callback.call(target, payload);
      if (value !== undefined) result = value;
    }
    return result;
  };
  vox.eventMethods = function (proto) {
    Object.defineProperty(proto, "addEventListener", {
      value(event, callback) {
        vox.addListener(this, event, callback);
      },
      writable: true,
      configurable: true,
    });
    Object.defineProperty(proto, "removeEventListener", {
      value(event, callback) {
        vox.removeListener(this, event, callback);
      },
      writable: true,
      configurable: true,
    });
  };

  // The session clock: Python sends its time with every event, so the harness's virtual clock is
  // what `new Date()` and `Date.now()` show. While a handler runs, the real time it has taken is
  // added, unless the clock is virtual (there time moves only between events, deterministically).
  let clockBase = RealDate.now();
  let realBase = clockBase;
  let clockRuns = true;
  const now = () => clockBase + (clockRuns ? RealDate.now() - realBase : 0);
  function Date(...args) {
    if (new.target === undefined) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length ? args : [now()], new.target);
  }
  Date.prototype = RealDate.prototype;
  Object.defineProperty(RealDate.prototype, "constructor", { value: Date, writable: true, configurable: true });
  Date.now = now;
  Date.UTC = RealDate.UTC;
  Date.parse = RealDate.parse;
  global.Date = Date;
  vox.now = now;

  function dispatch(json) {
    const event = JSON.parse(json);
    clockBase = Math.round(event.now);
    realBase = RealDate.now();
    const handler = vox.handlers[event.type];
    if (handler === undefined) throw new Error(`engine: no handler for event type ${event.type}`);
    handler(event);
  }

  function drain() {
    const out = vox.outbox;
    vox.outbox = [];
    try {
      return JSON.stringify(out);
    } catch (e) {
      return JSON.stringify([{ op: "log", system: true, text: `engine: a command could not be encoded: ${e}` }]);
    }
  }

  vox.handlers.init = (event) => {
    vox.session = event.session;
    clockRuns = event.session.clockRuns;
  };

  const hidden = { writable: false, enumerable: false, configurable: false };
  Object.defineProperty(global, "__vox", { value: vox, ...hidden });
  Object.defineProperty(global, "__voxDispatch", { value: dispatch, ...hidden });
  Object.defineProperty(global, "__voxDrain", { value: drain, ...hidden });
})(globalThis);
