// WebSocket (reference 3.7): `new WebSocket(url, {protocols, headers})` or VoxEngine.createWebSocket,
// text messages both ways, and media: `call.sendMediaTo(ws, {encoding, tag, customParameters})`
// streams the call's audio to the peer as start/media/stop JSON; `ws.sendMediaTo(call)` plays the
// peer's. Property handlers (onopen, onmessage...) run before addEventListener handlers.
"use strict";
(function (global) {
  const vox = global.__vox;
  const sockets = new Map(); // id -> WebSocket
  const state = new WeakMap(); // WebSocket -> {id, url, readyState}
  const HANDLER = {
    "WebSocket.Open": "onopen", "WebSocket.Close": "onclose", "WebSocket.Message": "onmessage",
    "WebSocket.Error": "onerror", "WebSocket.Created": "oncreated",
    "WebSocket.MediaEventStarted": "onmediastarted", "WebSocket.MediaEventEnded": "onmediaended",
  };

  class WebSocket {
    constructor(url, parameters) {
      if (typeof url !== "string" || !/^wss?:\/\//i.test(url)) {
        throw new TypeError("WebSocket: the URL must start with ws:// or wss://");
      }
      const p = typeof parameters === "string" || Array.isArray(parameters) ? { protocols: parameters }
        : parameters !== null && typeof parameters === "object" ? parameters : {};
      const protocols = p.protocols === undefined ? ["chat"] : [].concat(p.protocols).map(String);
      const id = `websocket-${vox.newId()}`;
      state.set(this, { id, url, readyState: "connecting" });
      sockets.set(id, this);
      for (const name of Object.values(HANDLER)) this[name] = null;
      vox.send({ op: "ws", action: "connect", id, url, protocols,
        headers: Array.isArray(p.headers) ? p.headers : [] });
    }
    get url() { return state.get(this).url; }
    get readyState() { return state.get(this).readyState; }
    id() { return state.get(this).id; }
    send(data) {
      const d = state.get(this);
      if (d.readyState !== "open") throw new Error("WebSocket.send: the connection is not open");
      vox.send({ op: "ws", action: "send", id: d.id, text: String(data) });
    }
    close() {
      const d = state.get(this);
      if (d.readyState === "closed" || d.readyState === "closing") return;
      d.readyState = "closing";
      vox.send({ op: "ws", action: "close", id: d.id });
    }
    sendMediaTo(unit, parameters) { vox.sendMediaTo(this, unit, parameters); }
    stopMediaTo(unit) { vox.stopMediaTo(this, unit); }
    clearMediaBuffer(parameters) {
      const p = parameters !== null && typeof parameters === "object" ? parameters : {};
      vox.send({ op: "ws", action: "clear", id: state.get(this).id, tag: p.tag === undefined ? null : String(p.tag) });
    }
    toString() { return `WebSocket ${state.get(this).id} ${state.get(this).url}`; }
  }
  vox.eventMethods(WebSocket.prototype);

  // sendMediaTo(ws, {encoding, tag, customParameters}): the socket streams with these.
  vox.mediaParams = function (target, parameters) {
    if (!(target instanceof WebSocket) || parameters === null || typeof parameters !== "object") return;
    const params = {};
    if (parameters.encoding !== undefined) params.encoding = String(parameters.encoding);
    if (parameters.tag !== undefined) params.tag = String(parameters.tag);
    if (parameters.customParameters !== undefined) params.customParameters = parameters.customParameters;
    vox.send({ op: "ws", action: "params", id: target.id(), params });
  };

  // A socket a client opened to the session's URL (after allowWebSocketConnections): already open.
  function incoming(event) {
    const socket = Object.create(WebSocket.prototype);
    state.set(socket, { id: event.id, url: event.url, readyState: "open" });
    sockets.set(event.id, socket);
    for (const name of Object.values(HANDLER)) socket[name] = null;
    const name = "AppEvents.NewWebSocketConnection";
    vox.emit(global.VoxEngine, name, Object.assign({ name, websocket: socket }, event.data));
  }

  vox.allowWebSocketConnections = function () {
    vox.send({ op: "ws", action: "allow", id: "" });
  };

  vox.handlers.websocket = (event) => {
    if (event.event === "incoming") {
      incoming(event);
      return;
    }
    const socket = sockets.get(event.id);
    if (socket === undefined) return;
    const d = state.get(socket);
    if (event.name === "WebSocket.Open") d.readyState = "open";
    if (event.name === "WebSocket.Close") {
      d.readyState = "closed";
      sockets.delete(event.id);
    }
    const payload = Object.assign({ websocket: socket, name: event.name }, event.data);
    const handler = socket[HANDLER[event.name]];
    if (typeof handler === "function") handler.call(socket, payload);
    vox.emit(socket, event.name, payload);
  };

  vox.createWebSocket = (url, parameters) => new WebSocket(url, parameters);
  global.WebSocket = WebSocket;
})(globalThis);
