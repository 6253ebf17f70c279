// Conference bridge with a PIN: a lobby that checks the PIN, and the conference room itself.
//
// This one scenario runs under two rules of applications/demo/rules.config.json:
//   "conference"      (dial 700): the lobby. The caller is asked for the PIN, types it followed by
//                     #, and has MAX_TRIES tries; then VoxEngine.callConference(ROOM) joins them.
//   "conference-room" (pattern "conf-.+"): the standalone conference session. Every callConference
//                     with a matching id arrives here as one more CallAlerting in the SAME session,
//                     whose Conference mixes everyone: each participant hears all the others.
// The room only admits calls carrying the PIN in the X-Conference-Pin header, which the lobby adds:
// someone dialling "conf-main" directly from a phone does not skip the PIN.
//
// Settings: the PIN is the application secret CONFERENCE_PIN if set, else DEFAULT_PIN.

require(Modules.Conference);

const DEFAULT_PIN = "1234";
const PIN = VoxEngine.getSecretValue("CONFERENCE_PIN") || DEFAULT_PIN;
const ROOM = "conf-main"; // the conference id; must match the "conference-room" rule's pattern
const ROOM_PREFIX = "conf-";
const PIN_HEADER = "X-Conference-Pin";
const MAX_TRIES = 3;
const KEY_TIMEOUT_SECONDS = 10; // no complete PIN this long after the prompt counts as a wrong try
const VOICE = VoiceList.Amazon.en_US_Joanna;

VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  if (e.destination.startsWith(ROOM_PREFIX)) joinRoom(e);
  else lobby(e);
});

// ---- The lobby: one caller per session. ----

function lobby(e) {
  const call = e.call;
  let tries = 0;
  let digits = "";
  let collecting = false; // true while keys make up a PIN
  let timer = null;
  let afterSpeech = null;
  let room = null; // the call into the conference session

  function speak(text, then) {
    call.stopPlayback(); // no PlaybackFinished for the stopped prompt: `then` is always this one's
    afterSpeech = then || null;
    call.say(text, { voice: VOICE });
  }
  call.addEventListener(CallEvents.PlaybackFinished, () => {
    const next = afterSpeech;
    afterSpeech = null;
    if (next) next();
  });

  function askForPin() {
    tries += 1;
    digits = "";
    collecting = true;
    Logger.write(`conference: asking for the PIN, try ${tries}`);
    const text = tries === 1
      ? "Welcome to the conference bridge. Please enter the conference PIN, followed by the hash key."
      : "Please enter the conference PIN again, followed by the hash key.";
    speak(text, () => { timer = setTimeout(wrongPin, KEY_TIMEOUT_SECONDS * 1000); });
  }

  function stopTimer() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  function wrongPin() {
    stopTimer();
    collecting = false;
    Logger.write(`conference: wrong PIN, try ${tries}`);
    if (tries < MAX_TRIES) speak("That PIN is not correct.", askForPin);
    else speak("That PIN is not correct. Goodbye.", () => call.hangup());
  }

  function join() {
    stopTimer();
    collecting = false;
    Logger.write("conference: PIN accepted");
    speak("Thank you. You are now joining the conference.", () => {
      const headers = {};
      headers[PIN_HEADER] = PIN;
      room = VoxEngine.callConference(ROOM, e.callerid, e.displayName, headers);
      room.addEventListener(CallEvents.Connected, () => {
        Logger.write(`conference: ${e.callerid} joined ${ROOM}`);
        VoxEngine.sendMediaBetween(call, room); // the caller hears the room, the room hears the caller
      });
      room.addEventListener(CallEvents.Failed, (f) => {
        Logger.write(`conference: cannot join ${ROOM}: ${f.code} ${f.reason}`);
        room = null;
        speak("Sorry, the conference is not available. Goodbye.", () => call.hangup());
      });
      room.addEventListener(CallEvents.Disconnected, () => call.hangup());
    });
  }

  call.handleTones(true);
  call.addEventListener(CallEvents.ToneReceived, (t) => {
    if (!collecting) return;
    if (digits === "") call.stopPlayback(); // the first key interrupts the prompt ...
    afterSpeech = null; // ... and its key timer is started here instead
    stopTimer();
    if (t.tone === "#") {
      if (digits === PIN) join();
      else wrongPin();
      return;
    }
    digits += t.tone;
    timer = setTimeout(wrongPin, KEY_TIMEOUT_SECONDS * 1000);
  });

  call.addEventListener(CallEvents.Connected, askForPin);
  call.addEventListener(CallEvents.Disconnected, () => {
    Logger.write("conference: caller left");
    if (room !== null) room.hangup();
    VoxEngine.terminate();
  });
  call.answer();
}

// ---- The room: the standalone conference session, one CallAlerting per participant. ----

let conference = null; // created with the first participant
let participants = 0;

function header(headers, name) {
  for (const key of Object.keys(headers || {})) {
    if (key.toLowerCase() === name.toLowerCase()) return headers[key];
  }
  return undefined;
}

function joinRoom(e) {
  const call = e.call;
  if (header(e.headers, PIN_HEADER) !== PIN) {
    Logger.write(`conference room: refused ${e.callerid} (no PIN from the lobby)`);
    call.reject(403);
    if (participants === 0) VoxEngine.terminate();
    return;
  }
  if (conference === null) conference = VoxEngine.createConference();
  participants += 1;
  call.addEventListener(CallEvents.Connected, () => {
    // Audio-only conference: the participant sends to the conference mix and hears it back
    // (without their own voice).
    VoxEngine.sendMediaBetween(call, conference);
    Logger.write(`conference room: ${e.callerid} in, ${participants} participant(s)`);
  });
  call.addEventListener(CallEvents.Disconnected, () => {
    participants -= 1;
    Logger.write(`conference room: ${e.callerid} left, ${participants} participant(s)`);
    if (participants === 0) VoxEngine.terminate(); // the last one out closes the room
  });
  call.answer();
}
