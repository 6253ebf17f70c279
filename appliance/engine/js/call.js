// Call: one call leg as scripts see it, mirrored from the engine's leg by events.
//
// Incoming legs arrive as {type: "call", event: "alerting"} and become AppEvents.CallAlerting;
// VoxEngine.callSIP/callUser create the Call here at once (state PROGRESSING) and ask the engine to
// dial it. Methods queue {op: "call"} commands; the leg's events come back as {type: "call"}.
"use strict";
(function (global) {
  const vox = global.__vox;
  const calls = new Map(); // id -> Call; ended calls stay (RecordStopped follows Disconnected)
  const data = new WeakMap(); // Call -> its mirrored state

  function notYet(name) {
    return function () {
      throw new Error(`Call.${name} is not supported by this version of the appliance yet`);
    };
  }

  // Headers as scripts pass them: an object of names and values, or nothing.
  function headerObject(value, what) {
    const out = {};
    if (value === undefined || value === null) return out;
    if (typeof value !== "object" || Array.isArray(value)) {
      throw new TypeError(`${what}: headers must be an object of header names and values`);
    }
    for (const key of Object.keys(value)) out[key] = String(value[key]);
    return out;
  }

  // A call the script was told has ended cannot be used again: a clear error rather than silence.
  // (A leg that ended while the news is on its way is still usable here; the engine ignores it.)
  function usable(call, method) {
    const d = data.get(call);
    if (d === undefined) throw new TypeError(`${method}: not a Call`);
    if (d.state === "TERMINATED") {
      throw new Error(`Call.${method}: call ${d.id} has already ended (${d.ending})`);
    }
    return d;
  }
  vox.usableCall = usable;

  function incomingOnly(call, method) {
    const d = usable(call, method);
    if (!d.incoming) throw new Error(`Call.${method}: call ${d.id} is outgoing; only incoming calls can be ${method === "answer" ? "answered" : "asked to"}`);
    return d;
  }

  class Call {
    constructor(id, info) {
      data.set(this, {
        id,
        state: info.incoming ? "ALERTING" : "PROGRESSING",
        incoming: !!info.incoming,
        callerid: info.callerid || "",
        displayName: info.displayName || "",
        number: info.number || "",
        clientType: info.clientType === "conference" ? "sip" : info.clientType || "sip",
        customData: info.customData || "",
        headers: Object.assign({}, info.headers || {}),
        tones: false,
        blindTransfer: false,
        ending: "",
      });
      calls.set(id, this);
    }
    id() { return data.get(this).id; }
    state() { return data.get(this).state; }
    incoming() { return data.get(this).incoming; }
    callerid() { return data.get(this).callerid; }
    displayName() { return data.get(this).displayName; }
    number() { return data.get(this).number; }
    clientType() { return data.get(this).clientType; }
    // The X- headers of the call's INVITE: received (incoming) or sent (outgoing).
    headers() { return Object.assign({}, data.get(this).headers); }
    vad() { return false; }
    customData(value) {
      const d = data.get(this);
      if (arguments.length > 0 && value !== undefined) d.customData = String(value);
      return d.customData;
    }
    toString() {
      const d = data.get(this);
      return `Call ${d.id} (${d.incoming ? "incoming" : "outgoing"} ${d.clientType}, ${d.state}) ` +
        `${d.callerid} -> ${d.number}`;
    }

    answer(extraHeaders) {
      incomingOnly(this, "answer");
      command(this, "answer", { headers: headerObject(extraHeaders, "answer") });
    }
    ring(extraHeaders) {
      incomingOnly(this, "ring");
      command(this, "ring", { headers: headerObject(extraHeaders, "ring") });
    }
    startEarlyMedia(extraHeaders) {
      incomingOnly(this, "startEarlyMedia");
      command(this, "earlyMedia", { headers: headerObject(extraHeaders, "startEarlyMedia") });
    }
    reject(code, extraHeaders) {
      if (data.get(this).state === "TERMINATED") return;
      let n = 486;
      if (code !== undefined && code !== null) {
        n = Number(code);
        if (!Number.isInteger(n) || n < 300 || n > 699) {
          throw new RangeError(`Call.reject: the code must be a SIP code from 300 to 699, not ${code}`);
        }
      }
      command(this, "reject", { code: n, headers: headerObject(extraHeaders, "reject") });
    }
    decline(code, extraHeaders) { this.reject(code, extraHeaders); }
    hangup(extraHeaders) {
      if (data.get(this).state === "TERMINATED") return; // cleanup code hangs up ended calls: harmless
      command(this, "hangup", { headers: headerObject(extraHeaders, "hangup") });
    }
    sendDigits(digits) {
      usable(this, "sendDigits");
      const text = String(digits === undefined ? "" : digits);
      if (!/^[0-9*#A-Da-dpP]*$/.test(text)) throw new TypeError(`Call.sendDigits: invalid digits "${text}"`);
      command(this, "dtmf", { digits: text });
    }
    sendInfo(mimeType, body, headers) {
      usable(this, "sendInfo");
      if (typeof mimeType !== "string" || !/^[\w.+-]+\/[\w.+-]+/.test(mimeType)) {
        throw new TypeError(`Call.sendInfo: "${mimeType}" is not a MIME type`);
      }
      const text = String(body === undefined ? "" : body);
      if (text.length > 8192) throw new RangeError("Call.sendInfo: the body is limited to 8192 bytes");
      command(this, "info", { mimeType, body: text, headers: headerObject(headers, "sendInfo") });
    }
    sendMessage(text) {
      usable(this, "sendMessage");
      const message = String(text === undefined ? "" : text);
      if (message.length > 8192) throw new RangeError("Call.sendMessage: the text is limited to 8192 bytes");
      command(this, "message", { text: message });
    }
    handleTones(doHandle) { data.get(this).tones = doHandle === undefined ? true : !!doHandle; }
    handleBlindTransfer(handle) { data.get(this).blindTransfer = !!handle; }
    handleMicStatus() {} // SIP and analog lines carry no microphone state: MicStatusChange never fires
    transferTo(parameters) {
      usable(this, "transferTo");
      const p = parameters || {};
      if (typeof p.to !== "string" || p.to === "") throw new TypeError("Call.transferTo: parameters.to is required");
      command(this, "transfer", { to: p.to, headers: headerObject(p.headers, "transferTo") });
    }
    notifyBlindTransferSuccess() {
      command(this, "transferOutcome", { ok: true, code: 200, reason: "OK" });
    }
    notifyBlindTransferFailed(code, reason) {
      const n = Number(code);
      command(this, "transferOutcome", {
        ok: false, code: Number.isInteger(n) && n >= 300 && n <= 699 ? n : 603, reason: String(reason || "Decline"),
      });
    }
    // Legacy detectors (ama-team definitions): accepted, never fire.
    detectProgressTone() {}
    detectVoicemailTone() {}
    detectVoicemailPrompt() {}
  }
  // Re-INVITEs are answered by the SIP stack itself (hold, codec changes); ReInviteReceived never
  // fires, so easyProcess's relays of it have nothing to do.
  Call.prototype.reInvite = function () {};
  Call.prototype.acceptReInvite = function () {};
  Call.prototype.rejectReInvite = function () {};
  Call.prototype.answerDirect = function () {
    throw new Error("Call.answerDirect: P2P calls are not available on this appliance (media always flows through it)");
  };
  for (const name of ["enableBeepDetection", "disableBeepDetection"]) {
    Call.prototype[name] = notYet(name);
  }
  vox.eventMethods(Call.prototype);

  function command(call, action, args) {
    const d = data.get(call);
    vox.send(Object.assign({ op: "call", id: d.id, action }, args));
  }

  function setState(call, newState) {
    const d = data.get(call);
    if (d.state === newState) return;
    const oldState = d.state;
    d.state = newState;
    vox.emit(call, "Call.StateChanged", { call, name: "Call.StateChanged", id: d.id, oldState, newState });
  }

  const NEXT_STATE = {
    "Call.Connected": "CONNECTED",
    "Call.Disconnected": "TERMINATED",
    "Call.Failed": "TERMINATED",
  };

  vox.handlers.call = (event) => {
    if (event.event === "alerting") {
      const call = new Call(event.id, Object.assign({ incoming: true }, event.info));
      const info = event.info;
      vox.emit(global.VoxEngine, "Application.CallAlerting", {
        name: "Application.CallAlerting",
        call,
        callerid: info.callerid,
        displayName: info.displayName,
        destination: info.number,
        toURI: info.toURI,
        fromURI: info.fromURI,
        headers: info.headers || {},
        customData: info.customData,
        scheme: "",
      });
      return;
    }
    const call = calls.get(event.id);
    if (call === undefined) return;
    const d = data.get(call);
    if (event.name === "Call.ToneReceived" && !d.tones) return;
    if (event.name === "Call.BlindTransferRequested" && !d.blindTransfer) {
      // Nobody handles transfers in this session: the transferor is told it failed.
      command(call, "transferOutcome", { ok: false, code: 603, reason: "Decline" });
      return;
    }
    const next = NEXT_STATE[event.name];
    if (next === "TERMINATED") d.ending = event.name === "Call.Failed" ? "it failed" : "it was disconnected";
    if (next !== undefined) setState(call, next);
    vox.emit(call, event.name, Object.assign({ call, name: event.name, id: d.id }, event.data));
  };

  // VoxEngine.callSIP(to, parameters) and its legacy positional form (to, callerid, displayName,
  // password, authUser, extraHeaders, video, outProxy).
  function callSIP(to, parameters) {
    let p = parameters;
    if (p === undefined || p === null || typeof p !== "object") {
      const a = arguments;
      p = { callerid: a[1], displayName: a[2], password: a[3], authUser: a[4], headers: a[5], outProxy: a[7] };
    }
    if (typeof to !== "string" || to === "") throw new TypeError("VoxEngine.callSIP: the destination URI is required");
    return dial("sip", to, p, "callSIP");
  }

  // VoxEngine.callUser(parameters) and the legacy (username, callerid, displayName, extraHeaders).
  function callUser(parameters) {
    let p = parameters;
    if (typeof p !== "object" || p === null) {
      const a = arguments;
      p = { username: a[0], callerid: a[1], displayName: a[2], extraHeaders: a[3] };
    }
    if (typeof p.username !== "string" || p.username === "") {
      throw new TypeError("VoxEngine.callUser: parameters.username is required");
    }
    return dial("user", p.username, p, "callUser");
  }

  // VoxEngine.callPSTN(number, callerid, parameters): a line is picked by the outbound routes.
  function callPSTN(number, callerid, parameters) {
    const to = typeof number === "number" ? String(number) : number;
    if (typeof to !== "string" || !/[0-9]/.test(to)) {
      throw new TypeError(`VoxEngine.callPSTN: "${number}" is not a phone number`);
    }
    const p = Object.assign({}, parameters !== null && typeof parameters === "object" ? parameters : {});
    p.callerid = callerid;
    return dial("pstn", to, p, "callPSTN");
  }

  // VoxEngine.callConference(conferenceId, callerid, displayName, headers, scheme): into the conference's
  // own session, started from the rule matching the id.
  function callConference(conferenceId, callerid, displayName, headers) {
    if (typeof conferenceId !== "string" || conferenceId === "") {
      throw new TypeError("VoxEngine.callConference: the conference id must be a non-empty string");
    }
    const call = dial("conference", conferenceId, { callerid, displayName, headers }, "callConference");
    data.get(call).conference = true;
    return call;
  }

  // A SIP header field holds at most 200 bytes (reference 4.8): longer values could never be sent.
  const MAX_FIELD = 200;

  function dial(kind, to, p, what) {
    const id = `call-${vox.newId()}`;
    const callerid = p.callerid === undefined || p.callerid === null ? "" : String(p.callerid);
    const displayName = p.displayName ? String(p.displayName) : "";
    for (const [name, value] of [["the destination", to], ["callerid", callerid], ["displayName", displayName]]) {
      if (value.length > MAX_FIELD) {
        throw new RangeError(`VoxEngine.${what}: ${name} is longer than ${MAX_FIELD} characters`);
      }
    }
    const headers = headerObject(p.headers || p.extraHeaders, `VoxEngine.${what}`);
    // callUser's special header: how long to ring (10-400 s, 60 by default); not sent on.
    let noAnswerSeconds;
    if (headers["VI-CallTimeout"] !== undefined) {
      const n = Number(headers["VI-CallTimeout"]);
      delete headers["VI-CallTimeout"];
      if (!Number.isFinite(n) || n < 10 || n > 400) {
        throw new RangeError(`VoxEngine.${what}: VI-CallTimeout must be 10 to 400 seconds, not ${n}`);
      }
      noAnswerSeconds = n;
    }
    const call = new Call(id, { incoming: false, callerid, displayName, number: to, clientType: kind, headers });
    vox.send({
      op: "dial", id, kind, to, callerid, displayName, headers, noAnswerSeconds,
      authUser: p.authUser ? String(p.authUser) : "",
      password: p.password ? String(p.password) : "",
      outProxy: p.outProxy ? String(p.outProxy) : "",
    });
    return call;
  }

  // call.is_conf: truthy for calls made by callConference (easyProcess reads it).
  Object.defineProperty(Call.prototype, "is_conf", {
    get() { return !!data.get(this).conference; },
  });

  global.Call = Call;
  vox.callSIP = callSIP;
  vox.callUser = callUser;
  vox.callPSTN = callPSTN;
  vox.callConference = callConference;
})(globalThis);
