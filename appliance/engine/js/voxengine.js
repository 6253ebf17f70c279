// The VoxEngine namespace, application events, require() and the legacy session helpers.
"use strict";
(function (global) {
  const vox = global.__vox;

  function cloudOnly(feature) {
    return function () {
      throw new Error(`${feature} is not available on this appliance`);
    };
  }

  const VoxEngine = {
    customData(value) {
      if (arguments.length > 0 && value !== undefined) {
        const text = String(value);
        if (text.length > vox.limits.customDataChars) {
          throw new RangeError(`customData is limited to ${vox.limits.customDataChars} characters`);
        }
        vox.session.customData = text;
        vox.send({ op: "customData", value: text });
      }
      return vox.session.customData;
    },
    terminate() {
      if (vox.phase === "running") vox.send({ op: "terminate" });
    },
    getSecretValue(name) {
      if (typeof name !== "string" || name === "") return undefined;
      const secrets = vox.session.secrets || {};
      return Object.prototype.hasOwnProperty.call(secrets, name) ? secrets[name] : undefined;
    },
    // Diagnostics of Voximplant's cloud; nothing to switch on a box.
    enableStatisticsForIncomingWebsockets() {},
    disableStatisticsForIncomingWebsockets() {},
    enableTraceForIncomingWebsockets() {},
    disableTraceForIncomingWebsockets() {},
    callWhatsappUser: cloudOnly("WhatsApp calling"),
    enqueueACDRequest: cloudOnly("ACD"),
    enqueueTask: cloudOnly("SmartQueue"),
    createStreamingAgent: cloudOnly("RTMP streaming"),
  };
  const p2p = cloudOnly("P2P calling (callUserDirect)");
  VoxEngine.callUserDirect = p2p;
  VoxEngine.forwardCallToUserDirect = p2p;
  for (const name of ["callSIP", "callUser", "callPSTN", "callConference", "createConference", "destroyConference", "sendMediaBetween", "stopMediaBetween",
    "createTTSPlayer", "createURLPlayer", "createToneScriptPlayer", "createSequencePlayer", "createRecorder", "createASR", "createWebSocket",
    "allowWebSocketConnections"]) {
    VoxEngine[name] = vox[name];
  }
  vox.eventMethods(VoxEngine);
  global.VoxEngine = VoxEngine;

  // The HttpRequest handler's return value is the HTTP response body; a Promise is awaited.
  function reply(id, value) {
    if (value !== null && typeof value === "object" && typeof value.then === "function") {
      value.then(
        (v) => reply(id, v),
        (e) => {
          vox.send({ op: "reply", id, status: 500, body: "" });
          return Promise.reject(e);
        },
      );
      return;
    }
    let body;
    if (value === undefined || value === null) body = "";
    else if (typeof value === "string") body = value;
    else if (typeof value === "object") body = JSON.stringify(value);
    else body = String(value);
    vox.send({ op: "reply", id, status: 200, body });
  }

  vox.handlers.app = (event) => {
    if (event.name === "Application.Terminating") vox.phase = "terminating";
    else if (event.name === "Application.Terminated") vox.phase = "terminated";
    const payload = Object.assign({ name: event.name }, event.data);
    if (event.reply === undefined) {
      vox.emit(VoxEngine, event.name, payload);
      return;
    }
    let result;
    try {
      result = vox.emit(VoxEngine, event.name, payload);
    } catch (e) {
      vox.send({ op: "reply", id: event.reply, status: 500, body: "" });
      throw e;
    }
    reply(event.reply, result);
  };

  // require(Modules.X) enables nothing on a box: every module is present. Old and unknown module
  // names (require(Modules.Player) is require(undefined) today) must not throw.
  const cloudModules = /*CLOUD_MODULES*/ {};
  const warned = new Set();
  global.require = function require(module) {
    const feature = cloudModules[module];
    if (feature !== undefined && !warned.has(module)) {
      warned.add(module);
      vox.log(`require: ${feature} is a cloud feature; its functions are not available on this appliance`, true);
    }
  };

  // Internals that official Voximplant scenarios call.
  global.JSession = { close: () => VoxEngine.terminate() };
  global.JSession_GC = function () {};
  global.JSession_getLeftMemBytes = function () {
    return vox.host("heapLeft");
  };
})(globalThis);
