// IVR menu: spoken prompts (text-to-speech) and touch-tone (DTMF) choices.
//
// Reached by dialling 500 (rule "ivr" in applications/demo/rules.config.json). The caller hears
// "Press 1 to hear a tone. Press 2 to talk to an operator." and then:
//   1             -> three beeps (a ToneScript), "Goodbye", and the call is hung up;
//   2             -> "Please hold": the operator (the local SIP user OPERATOR) is called while the
//                    caller hears ringback; when the operator answers, the two calls are bridged.
//                    If the operator does not answer, the caller is told so and hung up;
//   any other key -> "Sorry, that is not a valid choice", then the menu again;
//   no key        -> after NO_INPUT_SECONDS the menu again; after MAX_MENUS menus, goodbye.
// A key pressed while the menu is being spoken interrupts it (barge-in).
//
// Settings: edit the constants below, or set the application secret IVR_OPERATOR to the user name of
// the operator (VoxEngine.getSecretValue reads application secrets; unknown names give undefined).

const OPERATOR = VoxEngine.getSecretValue("IVR_OPERATOR") || "101"; // local SIP user called on "2"
const NO_INPUT_SECONDS = 5; // how long to wait for a key after the menu
const MAX_MENUS = 3; // how many times the menu is played before giving up
const OPERATOR_RING_SECONDS = 30; // how long the operator's phone rings (10..400)
const VOICE = VoiceList.Amazon.en_US_Joanna;
const MENU = "Press 1 to hear a tone. Press 2 to talk to an operator.";
const BEEPS = "1000@-10;3(.5/.5/1)"; // ToneScript: 1 kHz, half a second on and off, for 3 seconds
const RINGBACK = "440@-19,480@-19;*(2/4/1+2)"; // ToneScript: the US ringback tone, until stopped

VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  let menus = 0; // how many times the menu was played
  let timer = null; // the no-input timer, while it runs
  let waitingForKey = false; // true while the menu is spoken and NO_INPUT_SECONDS after it
  let afterSpeech = null; // what to do once the prompt being spoken has finished
  let operator = null; // the call to the operator, once "2" was pressed
  let ringback = null; // the ringback player while the operator's phone rings

  // Say `text` to the caller, then run `then` (if given) when it has been spoken. A new prompt
  // first stops the old one: stopPlayback() fires no PlaybackFinished, so `then` always belongs
  // to the prompt that just finished.
  function speak(text, then) {
    call.stopPlayback();
    afterSpeech = then || null;
    call.say(text, { voice: VOICE });
  }

  call.addEventListener(CallEvents.PlaybackFinished, (p) => {
    if (p.error) Logger.write(`ivr: prompt failed: ${p.error}`);
    const next = afterSpeech;
    afterSpeech = null;
    if (next) next();
  });

  function menu() {
    if (menus >= MAX_MENUS) {
      goodbye("We did not get a choice from you. Goodbye.");
      return;
    }
    menus += 1;
    Logger.write(`ivr: menu ${menus}`);
    waitingForKey = true;
    speak(MENU, () => {
      timer = setTimeout(() => {
        timer = null;
        Logger.write("ivr: no key");
        menu();
      }, NO_INPUT_SECONDS * 1000);
    });
  }

  function goodbye(text) {
    waitingForKey = false;
    speak(text, () => call.hangup());
  }

  // Choice 1: play a ToneScript to the caller, then say goodbye.
  function beeps() {
    call.stopPlayback();
    const player = VoxEngine.createToneScriptPlayer(BEEPS);
    player.addEventListener(PlayerEvents.PlaybackFinished, () => goodbye("Goodbye."));
    player.sendMediaTo(call); // the caller now hears the player
  }

  // Choice 2: call the operator and bridge the two calls when the operator answers.
  function toOperator() {
    operator = VoxEngine.callUser({
      username: OPERATOR,
      callerid: e.callerid,
      displayName: e.displayName,
      extraHeaders: { "VI-CallTimeout": String(OPERATOR_RING_SECONDS) },
    });
    speak("Please hold while we connect you to an operator.", () => {
      ringback = VoxEngine.createToneScriptPlayer(RINGBACK);
      ringback.sendMediaTo(call);
    });
    operator.addEventListener(CallEvents.Connected, () => {
      Logger.write(`ivr: operator ${OPERATOR} answered`);
      afterSpeech = null;
      call.stopPlayback();
      if (ringback !== null) ringback.stop();
      // Each call now hears the other (this replaces the prompt or the ringback).
      VoxEngine.sendMediaBetween(call, operator);
    });
    operator.addEventListener(CallEvents.Failed, (f) => {
      Logger.write(`ivr: operator ${OPERATOR} failed: ${f.code} ${f.reason}`);
      operator = null;
      if (ringback !== null) ringback.stop();
      if (call.state() === "CONNECTED") goodbye("Sorry, no operator is available right now. Goodbye.");
    });
    operator.addEventListener(CallEvents.Disconnected, () => {
      Logger.write("ivr: the operator hung up");
      call.hangup();
    });
  }

  call.handleTones(true); // ToneReceived is off until a scenario asks for it
  call.addEventListener(CallEvents.ToneReceived, (t) => {
    if (!waitingForKey) return; // keys outside the menu are ignored
    waitingForKey = false;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    Logger.write(`ivr: key ${t.tone}`);
    if (t.tone === "1") beeps();
    else if (t.tone === "2") toOperator();
    else speak("Sorry, that is not a valid choice.", menu);
  });

  call.addEventListener(CallEvents.Connected, () => {
    Logger.write(`ivr: call from ${e.callerid} answered`);
    menu();
  });
  call.addEventListener(CallEvents.Disconnected, () => {
    Logger.write("ivr: call ended"); // the caller hung up, or the scenario did
    if (operator !== null) operator.hangup(); // harmless if it already ended
    VoxEngine.terminate();
  });
  call.answer();
});
