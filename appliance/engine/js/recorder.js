// Recordings: call.record() (Call.RecordStarted, Call.RecordStopped after the call ends) and the
// Recorder unit of VoxEngine.createRecorder() (Recorder.Started with its url, Stopped, Error),
// which records whatever is sent to it: `call.sendMediaTo(recorder)`.
"use strict";
(function (global) {
  const vox = global.__vox;
  const recorders = new Map(); // id -> Recorder, while recording
  const ids = new WeakMap(); // Recorder -> id

  function spec(parameters) {
    const p = parameters !== null && typeof parameters === "object" ? parameters : {};
    return { stereo: !!p.stereo, lossless: !!p.lossless, expire: p.expire === undefined ? "" : String(p.expire) };
  }

  class Recorder {
    constructor(id) {
      ids.set(this, id);
      recorders.set(id, this);
    }
    id() { return ids.get(this); }
    mute(doMute) { send(this, "mute", { mute: doMute === undefined ? true : !!doMute }); }
    stop() { send(this, "stop"); }
    toString() { return `Recorder ${ids.get(this)}`; }
  }
  vox.eventMethods(Recorder.prototype);

  function send(recorder, action, args) {
    const id = ids.get(recorder);
    if (recorders.has(id)) vox.send(Object.assign({ op: "recorder", action, id }, args));
  }

  vox.createRecorder = function (parameters) {
    const recorder = new Recorder(`recorder-${vox.newId()}`);
    vox.send(Object.assign({ op: "recorder", action: "create", kind: "unit", id: recorder.id() }, spec(parameters)));
    return recorder;
  };

  vox.handlers.recorder = (event) => {
    const recorder = recorders.get(event.id);
    if (recorder === undefined) return;
    if (event.name === "Recorder.Stopped") recorders.delete(event.id);
    vox.emit(recorder, event.name, Object.assign({ recorder, name: event.name }, event.data));
  };

  global.Call.prototype.record = function (parameters) {
    vox.usableCall(this, "record");
    vox.send(Object.assign({ op: "recorder", action: "create", kind: "call", id: `record-${vox.newId()}`,
      call: this.id() }, spec(parameters)));
  };

  global.Recorder = Recorder;
})(globalThis);
