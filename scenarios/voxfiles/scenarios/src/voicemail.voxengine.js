// Voicemail: greet the caller, record a message, and report it to a web service.
//
// Reached by dialling 800 (rule "voicemail" in applications/demo/rules.config.json). The caller
// hears the greeting and a beep, then everything they say is recorded until they hang up (or for
// at most MAX_MESSAGE_SECONDS). When the recording is finished (CallEvents.RecordStopped, after
// the caller hung up) the scenario POSTs a JSON notification to WEBHOOK_URL:
//   {"event": "voicemail", "recordingUrl": "http://<box>/records/....mp3", "callerId": "100",
//    "displayName": "...", "destination": "800", "duration": 12, "sessionId": 7,
//    "receivedAt": "2025-01-01T12:00:00.000Z"}
// duration is in seconds. The recording stays on the appliance and is served at recordingUrl.
//
// Settings: the application secret VOICEMAIL_WEBHOOK_URL (set it through the management API), or
// DEFAULT_WEBHOOK_URL below. Without either, the message is recorded and only logged.

const DEFAULT_WEBHOOK_URL = "";
const WEBHOOK_URL = VoxEngine.getSecretValue("VOICEMAIL_WEBHOOK_URL") || DEFAULT_WEBHOOK_URL;
const MAX_MESSAGE_SECONDS = 120;
const VOICE = VoiceList.Amazon.en_US_Joanna;
const GREETING = "Hello. Nobody can take your call right now. Please leave a message after the tone.";
const BEEP = "1000@-10;0.5(.5/0/1)"; // ToneScript: half a second of 1 kHz

let sessionId = 0;
VoxEngine.addEventListener(AppEvents.Started, (e) => { sessionId = e.sessionId; });

VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  let recording = false;
  let limit = null;

  call.addEventListener(CallEvents.Connected, () => {
    Logger.write(`voicemail: call from ${e.callerid}`);
    call.say(GREETING, { voice: VOICE });
  });
  // The greeting is over: beep, then record.
  call.addEventListener(CallEvents.PlaybackFinished, () => {
    const beep = VoxEngine.createToneScriptPlayer(BEEP);
    beep.addEventListener(PlayerEvents.PlaybackFinished, () => {
      if (call.state() !== "CONNECTED") return;
      call.record(); // both directions, mono mp3 (8 kHz, 32 kbps), as in the cloud
      recording = true;
      limit = setTimeout(() => {
        Logger.write("voicemail: the message is too long, hanging up");
        call.hangup();
      }, MAX_MESSAGE_SECONDS * 1000);
    });
    beep.sendMediaTo(call);
  });
  call.addEventListener(CallEvents.RecordStarted, (r) => Logger.write(`voicemail: recording to ${r.url}`));

  call.addEventListener(CallEvents.Disconnected, () => {
    if (limit !== null) clearTimeout(limit);
    if (!recording) {
      Logger.write("voicemail: the caller hung up before the tone; no message");
      VoxEngine.terminate();
    }
    // else: RecordStopped follows, with the file's URL and length.
  });
  call.addEventListener(CallEvents.RecordStopped, (r) => {
    Logger.write(`voicemail: message of ${r.duration} s at ${r.url}`);
    notify(r.url, r.duration).finally(() => VoxEngine.terminate());
  });

  async function notify(url, duration) {
    if (!WEBHOOK_URL) {
      Logger.write("voicemail: no VOICEMAIL_WEBHOOK_URL, nobody notified");
      return;
    }
    const message = {
      event: "voicemail",
      recordingUrl: url,
      callerId: e.callerid,
      displayName: e.displayName,
      destination: e.destination,
      duration,
      sessionId,
      receivedAt: new Date().toISOString(),
    };
    try {
      const result = await Net.httpRequestAsync(WEBHOOK_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        postData: JSON.stringify(message),
        timeout: 10,
      });
      // result.code is the HTTP status, or a negative number for a network error (-4, -7...).
      Logger.write(`voicemail: notified ${WEBHOOK_URL}: ${result.code}`);
    } catch (error) {
      Logger.write(`voicemail: notification failed: ${error}`);
    }
  }

  call.answer();
});
