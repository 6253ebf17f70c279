// Ring group: every member's phone rings at once; the first to answer gets the call.
//
// Reached by dialling 900 (rule "ringgroup" in applications/demo/rules.config.json; give the rule
// the pattern ".*" to send every incoming call to the group). Each member is a local SIP user (a
// phone registered to the appliance) and is called with VoxEngine.callUser at the same time.
//   - The first member to answer is bridged with the caller; the others stop ringing.
//   - If every member fails (busy, not registered, no answer within RING_SECONDS), the caller is
//     answered, hears a message, and is hung up.
//   - If the caller hangs up first, every member's phone stops ringing.
//   - When either side of the bridged call hangs up, the other is hung up and the session ends.
//
// Settings: MEMBERS below, or the application secret RING_GROUP_MEMBERS ("101,102,103").

const MEMBERS = (VoxEngine.getSecretValue("RING_GROUP_MEMBERS") || "101,102")
  .split(",").map((name) => name.trim()).filter((name) => name !== "");
const RING_SECONDS = 30; // how long the members' phones ring (10..400)
const VOICE = VoiceList.Amazon.en_US_Joanna;
const NOBODY = "Sorry, nobody is available to take your call. Please try again later. Goodbye.";

VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const caller = e.call;
  const ringing = new Map(); // member -> their Call, while it rings
  let answeredBy = null; // the member's Call that won
  let ringbackSent = false;
  let over = false; // the caller hung up

  Logger.write(`ringgroup: ${e.callerid} calls ${MEMBERS.join(", ")}`);
  for (const member of MEMBERS) {
    const leg = VoxEngine.callUser({
      username: member,
      callerid: e.callerid,
      displayName: e.displayName,
      extraHeaders: { "VI-CallTimeout": String(RING_SECONDS) },
    });
    ringing.set(member, leg);
    leg.addEventListener(CallEvents.Ringing, () => {
      if (!ringbackSent && answeredBy === null) caller.ring(); // the caller hears ringback (180)
      ringbackSent = true;
    });
    leg.addEventListener(CallEvents.Connected, () => {
      ringing.delete(member);
      if (answeredBy !== null || over) {
        leg.hangup(); // someone else was quicker
        return;
      }
      answeredBy = leg;
      Logger.write(`ringgroup: ${member} answered`);
      for (const [other, otherLeg] of ringing) {
        Logger.write(`ringgroup: stop ringing ${other}`);
        otherLeg.hangup(); // not answered yet: hangup() cancels it
      }
      ringing.clear();
      VoxEngine.sendMediaBetween(caller, leg); // applied as soon as the caller is answered
      caller.answer();
      leg.addEventListener(CallEvents.Disconnected, () => {
        Logger.write(`ringgroup: ${member} hung up`);
        caller.hangup();
        VoxEngine.terminate();
      });
    });
    leg.addEventListener(CallEvents.Failed, (f) => {
      if (!ringing.delete(member)) return; // cancelled by us: nothing to do
      Logger.write(`ringgroup: ${member} failed: ${f.code} ${f.reason}`);
      if (ringing.size === 0 && answeredBy === null && !over) nobodyAnswered();
    });
  }

  function nobodyAnswered() {
    Logger.write("ringgroup: nobody answered");
    caller.addEventListener(CallEvents.Connected, () => caller.say(NOBODY, { voice: VOICE }));
    caller.addEventListener(CallEvents.PlaybackFinished, () => caller.hangup());
    caller.answer();
  }

  caller.addEventListener(CallEvents.Disconnected, () => {
    over = true;
    Logger.write("ringgroup: call ended"); // the caller hung up, or the scenario did
    for (const leg of ringing.values()) leg.hangup(); // cancels the phones still ringing
    ringing.clear();
    if (answeredBy !== null) answeredBy.hangup();
    VoxEngine.terminate();
  });
});
