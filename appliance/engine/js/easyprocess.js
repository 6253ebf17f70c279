// easyProcess and the forwarding helpers (reference section 4.6), written over the public API as
// Voximplant's own easyprocess.js is, so scripts that replace or wrap them behave as in the cloud.
"use strict";
(function (global) {
  const VoxEngine = global.VoxEngine;

  function relay(from, to) {
    from.addEventListener(CallEvents.MessageReceived, (e) => to.sendMessage(e.text));
    from.addEventListener(CallEvents.InfoReceived, (e) => to.sendInfo(e.mimeType, e.body, e.headers));
    from.addEventListener(CallEvents.ReInviteReceived, (e) => to.reInvite(e.headers, e.mimeType, e.body));
    from.addEventListener(CallEvents.ReInviteAccepted, (e) => to.acceptReInvite(e.headers, e.mimeType, e.body));
    from.addEventListener(CallEvents.ReInviteRejected, (e) => to.rejectReInvite(e.headers));
  }

  // Bridge an incoming alerting call (call1) with an outgoing one (call2): call1 rings and hears early
  // media as call2 does, is answered when call2 is, and the session ends when either side ends.
  VoxEngine.easyProcess = function (call1, call2, onEstablished, direct) {
    if (!(call1 instanceof global.Call) || !(call2 instanceof global.Call)) {
      throw new TypeError("VoxEngine.easyProcess: call1 and call2 must be Call objects");
    }
    call2.addEventListener(CallEvents.Connected, (e) => {
      if (direct) call1.answerDirect(call2);
      else if (e.scheme && !call1.is_conf && !call2.is_conf) call1.answer(null, { scheme: e.scheme });
      else call1.answer();
    });
    VoxEngine.sendMediaBetween(call1, call2);
    if (typeof onEstablished === "function") {
      call1.addEventListener(CallEvents.Connected, () => onEstablished(call1, call2));
    }
    call2.addEventListener(CallEvents.Ringing, () => call1.ring());
    call2.addEventListener(CallEvents.AudioStarted, (e) => {
      if (e.scheme) call1.startEarlyMedia(null, e.scheme);
      else call1.startEarlyMedia();
    });
    relay(call1, call2);
    relay(call2, call1);
    for (const call of [call1, call2]) {
      call.addEventListener(CallEvents.Failed, () => global.JSession.close());
      call.addEventListener(CallEvents.Disconnected, () => global.JSession.close());
    }
  };

  VoxEngine.forwardCallToPSTN = function (numberTransform, onEstablished, options) {
    VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      const number = typeof numberTransform === "function" ? numberTransform(e.destination) : e.destination;
      const callerid = options && options.callerid ? options.callerid : e.callerid;
      VoxEngine.easyProcess(e.call, VoxEngine.callPSTN(number, callerid), onEstablished);
    });
  };

  VoxEngine.forwardCallToUser = function (onEstablished, video) {
    VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      VoxEngine.easyProcess(e.call, VoxEngine.callUser(e.destination, e.callerid, e.displayName, null, video, e.scheme),
        onEstablished);
    });
  };

  VoxEngine.forwardCallToSIP = function (onEstablished, video) {
    VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      VoxEngine.easyProcess(e.call, VoxEngine.callSIP(e.toURI, e.callerid, e.displayName, null, null, null, video),
        onEstablished);
    });
  };

  // Answer every incoming call, play the file, then hang up and end the session; a call that fails or
  // is hung up first ends it too.
  VoxEngine.playSoundAndHangup = function (fileURL) {
    VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
      const call = e.call;
      call.addEventListener(CallEvents.Connected, () => call.startPlayback(fileURL));
      call.addEventListener(CallEvents.PlaybackFinished, () => {
        call.hangup();
        VoxEngine.terminate();
      });
      call.addEventListener(CallEvents.Failed, () => VoxEngine.terminate());
      call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
      call.answer();
    });
  };
})(globalThis);
