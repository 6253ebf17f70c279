// Players (reference section 3.4) and the Call methods built on them: say, startPlayback,
// stopPlayback, playProgressTone.
//
// A player is created here with an id at once, so scripts can route it immediately; the engine
// loads its audio and plays it through the media tick, reporting Player.* events. A call's
// say/startPlayback use a player of their own sent to the call, whose events become the call's
// PlaybackReady, PlaybackStarted and PlaybackFinished; a second one replaces the first, and
// stopPlayback ends it without PlaybackFinished (as Voximplant).
"use strict";
(function (global) {
  const vox = global.__vox;
  const players = new Map(); // id -> Player, while alive
  const state = new WeakMap(); // Player -> {id, call}
  const playing = new WeakMap(); // Call -> its say/startPlayback player

  class Player {
    constructor(id, call) {
      state.set(this, { id, call });
      players.set(id, this);
    }
    id() { return state.get(this).id; }
    pause() { command(this, "pause"); }
    resume() { command(this, "resume"); }
    stop() {
      const d = state.get(this);
      if (!players.has(d.id)) return;
      command(this, "stop");
    }
    addMarker(offset) {
      const n = Number(offset);
      if (!Number.isFinite(n)) throw new TypeError("addMarker: the offset must be a number of milliseconds");
      command(this, "marker", { offset: Math.trunc(n) });
    }
    sendMediaTo(unit, parameters) { vox.sendMediaTo(this, unit, parameters); }
    stopMediaTo(unit) { vox.stopMediaTo(this, unit); }
    toString() { return `Player ${state.get(this).id}`; }
  }
  vox.eventMethods(Player.prototype);

  function command(player, action, args) {
    const d = state.get(player);
    if (!players.has(d.id)) return;
    vox.send(Object.assign({ op: "player", action, id: d.id }, args));
  }

  function create(spec, call) {
    if (players.size >= vox.limits.playersPerSession) {
      throw new Error(`at most ${vox.limits.playersPerSession} media players per session`);
    }
    const player = new Player(`player-${vox.newId()}`, call);
    vox.send(Object.assign({ op: "player", action: "create", id: player.id() }, spec));
    return player;
  }

  function options(value) {
    return value !== null && typeof value === "object" ? value : {};
  }

  // createTTSPlayer(text, {voice|language, ttsOptions, onPause}) and the legacy (text, voice, ttsOptions).
  function ttsSpec(text, parameters, legacyOptions) {
    const p = options(parameters);
    const voice = parameters !== undefined && typeof parameters !== "object" ? parameters : p.voice || p.language;
    return {
      kind: "tts", text: String(text === undefined ? "" : text), voice: voice === undefined ? "" : String(voice),
      options: options(p.ttsOptions || legacyOptions), paused: !!p.onPause,
    };
  }

  // createURLPlayer(url | {url, method, headers, body}, {loop, onPause}) and the legacy (url, loop).
  function urlSpec(request, parameters) {
    const r = typeof request === "string" ? { url: request } : options(request);
    if (typeof r.url !== "string" || r.url === "") throw new TypeError("createURLPlayer: a URL is required");
    const p = typeof parameters === "boolean" ? { loop: parameters } : options(parameters);
    return {
      kind: "url", url: r.url, method: r.method || "GET", headers: Array.isArray(r.headers) ? r.headers : [],
      body: r.body || null, loop: !!p.loop, paused: !!p.onPause,
    };
  }

  function toneSpec(script, parameters) {
    const p = typeof parameters === "boolean" ? { loop: parameters } : options(parameters);
    return { kind: "tone", script: String(script === undefined ? "" : script), loop: !!p.loop };
  }

  // A SequencePlayer plays its TTS and URL segments one after the other as one player; its events
  // are SequencePlayer.*, and addMarker(offset, segment) counts from that segment's start (or end).
  class SequencePlayer extends Player {
    addMarker(offset, segment) {
      const n = Number(offset);
      const index = Number(segment === undefined ? 0 : segment);
      if (!Number.isFinite(n) || !Number.isInteger(index)) {
        throw new TypeError("addMarker: the offset (ms) and the segment index must be numbers");
      }
      command(this, "marker", { offset: Math.trunc(n), segment: index });
    }
    toString() { return `SequencePlayer ${this.id()}`; }
  }

  function segmentSpec(segment) {
    const s = options(segment);
    if (typeof s.text === "string") return ttsSpec(s.text, s.parameters);
    if (typeof s.url === "string") return urlSpec(s.url, s.parameters);
    throw new TypeError("createSequencePlayer: each segment needs a text (TTS) or a url");
  }

  vox.createSequencePlayer = function (parameters) {
    const segments = options(parameters).segments;
    if (!Array.isArray(segments) || segments.length === 0) {
      throw new TypeError("createSequencePlayer: parameters.segments must be a non-empty array");
    }
    const spec = { kind: "sequence", segments: segments.map(segmentSpec) };
    if (players.size >= vox.limits.playersPerSession) {
      throw new Error(`at most ${vox.limits.playersPerSession} media players per session`);
    }
    const player = new SequencePlayer(`player-${vox.newId()}`);
    vox.send(Object.assign({ op: "player", action: "create", id: player.id() }, spec));
    return player;
  };

  vox.createTTSPlayer = (text, parameters, legacyOptions) => create(ttsSpec(text, parameters, legacyOptions));
  vox.createURLPlayer = (request, parameters) => create(urlSpec(request, parameters));
  vox.createToneScriptPlayer = (script, parameters) => create(toneSpec(script, parameters));

  const CALL_EVENT = {
    "Player.PlaybackReady": "Call.PlaybackReady",
    "Player.Started": "Call.PlaybackStarted",
    "Player.PlaybackFinished": "Call.PlaybackFinished",
  };

  vox.handlers.player = (event) => {
    const player = players.get(event.id);
    if (player === undefined) return;
    const d = state.get(player);
    if (event.name === "Player.PlaybackFinished" || event.name === "Player.Stopped") players.delete(event.id);
    if (d.call !== undefined) {
      const name = CALL_EVENT[event.name];
      if (name === undefined || playing.get(d.call) !== player) return;
      if (event.name === "Player.PlaybackFinished") playing.delete(d.call);
      vox.emit(d.call, name, Object.assign({ call: d.call, name, id: d.call.id() }, event.data));
      return;
    }
    if (player instanceof SequencePlayer) {
      const name = event.name.replace(/^Player\./, "SequencePlayer.");
      vox.emit(player, name, Object.assign({ sequencePlayer: player, name }, event.data));
      return;
    }
    vox.emit(player, event.name, Object.assign({ player, name: event.name }, event.data));
  };

  function playOnCall(call, spec) {
    stopOnCall(call);
    const player = create(spec, call);
    playing.set(call, player);
    vox.sendMediaTo(player, call);
  }

  function stopOnCall(call) {
    const previous = playing.get(call);
    if (previous === undefined) return;
    playing.delete(call);
    previous.stop();
  }

  const C = global.Call.prototype;
  C.say = function (text, parameters, legacyOptions) {
    vox.usableCall(this, "say");
    playOnCall(this, ttsSpec(text, parameters, legacyOptions));
  };
  C.startPlayback = function (url, parameters) {
    vox.usableCall(this, "startPlayback");
    playOnCall(this, urlSpec(url, parameters));
  };
  C.playProgressTone = function (country) {
    vox.usableCall(this, "playProgressTone");
    playOnCall(this, { kind: "progress", country: String(country === undefined ? "US" : country) });
  };
  C.stopPlayback = function () { stopOnCall(this); };

  global.Player = Player;
  global.SequencePlayer = SequencePlayer;
})(globalThis);
