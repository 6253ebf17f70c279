// Speech recognition: VoxEngine.createASR({profile, phraseHints, singleUtterance, interimResults})
// and the legacy {lang, dict}. Recognition starts at once; audio comes from `call.sendMediaTo(asr)`.
// Events: ASR.Started, CaptureStarted, SpeechCaptured, Result {text, confidence}, InterimResult,
// Error {error} (also for a language without a local model), Stopped after stop().
"use strict";
(function (global) {
  const vox = global.__vox;
  const live = new Map(); // id -> ASR
  const data = new WeakMap(); // ASR -> {id, language, dictionary}

  class ASR {
    constructor(id, language, dictionary) {
      data.set(this, { id, language, dictionary });
      live.set(id, this);
    }
    id() { return data.get(this).id; }
    language() { return data.get(this).language; }
    dictionary() { return data.get(this).dictionary.slice(); }
    stop() {
      const id = data.get(this).id;
      if (live.has(id)) vox.send({ op: "asr", action: "stop", id });
    }
    toString() { return `ASR ${data.get(this).id}`; }
  }
  vox.eventMethods(ASR.prototype);

  vox.createASR = function (parameters) {
    const p = parameters !== null && typeof parameters === "object" ? parameters : {};
    const profile = p.profile !== undefined ? String(p.profile) : p.lang !== undefined ? String(p.lang) : "";
    const hints = Array.isArray(p.phraseHints) ? p.phraseHints : Array.isArray(p.dict) ? p.dict : [];
    const asr = new ASR(`asr-${vox.newId()}`, profile, hints.map(String));
    vox.send({
      op: "asr", action: "create", id: asr.id(), profile, phraseHints: hints.map(String),
      singleUtterance: !!p.singleUtterance, interimResults: !!p.interimResults,
      request: p.request !== null && typeof p.request === "object" ? p.request : {},
    });
    return asr;
  };

  vox.handlers.asr = (event) => {
    const asr = live.get(event.id);
    if (asr === undefined) return;
    if (event.name === "ASR.Stopped" || event.name === "ASR.Error") live.delete(event.id);
    vox.emit(asr, event.name, Object.assign({ asr, name: event.name }, event.data));
  };

  global.ASR = ASR;
})(globalThis);
