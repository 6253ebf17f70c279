// Media routing (reference section 4.4) and conferences.
//
// a.sendMediaTo(b) makes b hear a; b hears one source at a time, a new one replaces the old. A
// Conference mixes every unit that sends to it and sends each member the mix without its own voice.
// Routing is by unit id: the engine keeps what the script asked for and applies it as soon as both
// ends have media, so easyProcess may bridge a call that is still dialling.
"use strict";
(function (global) {
  const vox = global.__vox;
  const conferences = new Map(); // id -> Conference
  const confData = new WeakMap(); // Conference -> {id, stopped}

  function unitId(unit, what) {
    if (unit === null || typeof unit !== "object" || typeof unit.id !== "function") {
      throw new TypeError(`${what}: the argument is not a media unit (a Call, Conference, Player...)`);
    }
    return String(unit.id());
  }

  function route(action, source, target, what) {
    const from = unitId(source, what);
    const to = unitId(target, what);
    if (from === to) throw new Error(`${what}: a media unit cannot send media to itself`);
    vox.send({ op: "media", action, from, to });
  }

  vox.sendMediaTo = function (source, target, parameters) {
    for (const unit of [source, target]) {
      if (unit instanceof global.Call) vox.usableCall(unit, "sendMediaTo");
    }
    route("send", source, target, "sendMediaTo");
    if (parameters !== undefined && vox.mediaParams) vox.mediaParams(target, parameters);
  };
  vox.stopMediaTo = function (source, target) {
    route("stop", source, target, "stopMediaTo");
  };

  global.Call.prototype.sendMediaTo = function (unit, parameters) {
    vox.sendMediaTo(this, unit, parameters);
  };
  global.Call.prototype.stopMediaTo = function (unit) {
    vox.stopMediaTo(this, unit);
  };

  class Conference {
    constructor(id) {
      confData.set(this, { id, stopped: false });
      conferences.set(id, this);
    }
    id() { return confData.get(this).id; }
    sendMediaTo(unit) { vox.sendMediaTo(this, unit); }
    stopMediaTo(unit) { vox.stopMediaTo(this, unit); }
    stop() {
      const d = confData.get(this);
      if (d.stopped) return;
      d.stopped = true;
      conferences.delete(d.id);
      vox.send({ op: "conference", action: "stop", id: d.id });
      vox.emit(this, "Conference.Stopped", { name: "Conference.Stopped", conference: this });
    }
    getList() { return []; }
    get() { return undefined; }
    // Endpoints are for video conference rules, which a box does not have: ConferenceError 102, as in the
    // cloud for an audio rule (after the current code, like every event).
    add() {
      const error = "endpoints need a video conference rule; use sendMediaBetween for audio";
      Promise.resolve().then(() => vox.emit(this, "Conference.Error",
        { name: "Conference.Error", conference: this, code: 102, error }));
      return undefined;
    }
    toString() { return `Conference ${confData.get(this).id}`; }
  }
  vox.eventMethods(Conference.prototype);

  vox.createConference = function () {
    const conference = new Conference(`conference-${vox.newId()}`);
    vox.send({ op: "conference", action: "create", id: conference.id() });
    // Started follows the code that created it, so its listener can be added first.
    Promise.resolve().then(() => vox.emit(conference, "Conference.Started",
      { name: "Conference.Started", conference }));
    return conference;
  };
  vox.destroyConference = function (conference) {
    if (conference instanceof Conference) conference.stop();
  };
  vox.sendMediaBetween = function (a, b) {
    vox.sendMediaTo(a, b);
    vox.sendMediaTo(b, a);
  };
  vox.stopMediaBetween = function (a, b) {
    vox.stopMediaTo(a, b);
    vox.stopMediaTo(b, a);
  };

  global.Conference = Conference;
})(globalThis);
