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

  function headerObject(value) {
    const out = {};
    if (value === null || typeof value !== "object") return out;
    for (const key of Object.keys(value)) out[key] = String(value[key]);
    return out;
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
        clientType: info.clientType || "sip",
        customData: info.customData || "",
        tones: false,
        blindTransfer: false,
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

    answer(extraHeaders) { command(this, "answer", { headers: headerObject(extraHeaders) }); }
    ring(extraHeaders) { command(this, "ring", { headers: headerObject(extraHeaders) }); }
    startEarlyMedia(extraHeaders) { command(this, "earlyMedia", { headers: headerObject(extraHeaders) }); }
    reject(code, extraHeaders) {
      const n = Number(code);
      command(this, "reject", {
        code: Number.isInteger(n) && n >= 300 && n <= 699 ? n : 486,
        headers: headerObject(extraHeaders),
      });
    }
    decline(code, extraHeaders) { this.reject(code, extraHeaders); }
    hangup(extraHeaders) { command(this, "hangup", { headers: headerObject(extraHeaders) }); }
    sendDigits(digits) {
      const text = String(digits === undefined ? "" : digits);
      if (!/^[0-9*#A-Da-dpP]*$/.test(text)) throw new TypeError(`sendDigits: invalid digits "${text}"`);
      command(this, "dtmf", { digits: text });
    }
    sendInfo(mimeType, body, headers) {
      const text = String(body === undefined ? "" : body);
      if (text.length > 8192) throw new RangeError("sendInfo: the body is limited to 8192 bytes");
      command(this, "info", { mimeType: String(mimeType), body: text, headers: headerObject(headers) });
    }
    sendMessage(text) {
      const message = String(text === undefined ? "" : text);
      if (message.length > 8192) throw new RangeError("sendMessage: the text is limited to 8192 bytes");
      command(this, "message", { text: message });
    }
    handleTones(doHandle) { data.get(this).tones = doHandle === undefined ? true : !!doHandle; }
    handleBlindTransfer(handle) { data.get(this).blindTransfer = !!handle; }
    handleMicStatus() {}
    transferTo(parameters) {
      const p = parameters || {};
      if (typeof p.to !== "string" || p.to === "") throw new TypeError("transferTo: parameters.to is required");
      command(this, "transfer", { to: p.to, headers: headerObject(p.headers) });
    }
    notifyBlindTransferSuccess() {}
    notifyBlindTransferFailed() {}
    // Legacy detectors (ama-team definitions): accepted, never fire.
    detectProgressTone() {}
    detectVoicemailTone() {}
    detectVoicemailPrompt() {}
  }
  for (const name of [
    "answerDirect", "enableBeepDetection", "disableBeepDetection", "reInvite", "acceptReInvite", "rejectReInvite",
  ]) {
    Call.prototype[name] = notYet(name);
  }
  vox.eventMethods(Call.prototype);

  function command(call, action, args) {
    const d = data.get(call);
    if (d.state === "TERMINATED") return; // late calls on an ended leg are harmless no-ops
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
    const next = NEXT_STATE[event.name];
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
    if (typeof to !== "string" || to === "") throw new TypeError("callSIP: the destination URI is required");
    return dial("sip", to, p);
  }

  // VoxEngine.callUser(parameters) and the legacy (username, callerid, displayName, extraHeaders).
  function callUser(parameters) {
    let p = parameters;
    if (typeof p !== "object" || p === null) {
      const a = arguments;
      p = { username: a[0], callerid: a[1], displayName: a[2], extraHeaders: a[3] };
    }
    if (typeof p.username !== "string" || p.username === "") throw new TypeError("callUser: username is required");
    return dial("user", p.username, p);
  }

  function dial(kind, to, p) {
    const id = `call-${vox.newId()}`;
    const callerid = p.callerid === undefined || p.callerid === null ? "" : String(p.callerid);
    const call = new Call(id, {
      incoming: false,
      callerid,
      displayName: p.displayName ? String(p.displayName) : "",
      number: to,
      clientType: kind,
    });
    vox.send({
      op: "dial",
      id,
      kind,
      to,
      callerid,
      displayName: p.displayName ? String(p.displayName) : "",
      headers: headerObject(p.headers || p.extraHeaders),
      authUser: p.authUser ? String(p.authUser) : "",
      password: p.password ? String(p.password) : "",
      outProxy: p.outProxy ? String(p.outProxy) : "",
    });
    return call;
  }

  global.Call = Call;
  vox.callSIP = callSIP;
  vox.callUser = callUser;
})(globalThis);
