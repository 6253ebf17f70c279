// Call forwarding: every call is passed on to a local SIP user, as dialled.
//
// Reached by dialling 6 followed by a user name (rule "forward", pattern "6.+", in
// applications/demo/rules.config.json): 6101 rings the local SIP user 101 (a phone registered to the
// appliance). VoxEngine.easyProcess does the bridging, exactly as in the Voximplant cloud: the caller
// hears the callee's phone ring, is answered when the callee answers, each hears the other, and
// when either side hangs up (or the callee cannot be reached) the session ends.
//
// To forward to a fixed user instead, set FIXED_TARGET (or the application secret FORWARD_TO).
// To forward to a SIP address rather than a local user, replace callUser with
//   VoxEngine.callSIP("sip:alice@192.0.2.10", {callerid: e.callerid, displayName: e.displayName})

const PREFIX = "6"; // what the rule's pattern puts in front of the user name
const FIXED_TARGET = VoxEngine.getSecretValue("FORWARD_TO") || ""; // "" = the user after the prefix

VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const target = FIXED_TARGET || e.destination.slice(PREFIX.length);
  Logger.write(`forward: ${e.callerid} -> user ${target}`);
  const callee = VoxEngine.callUser({ username: target, callerid: e.callerid, displayName: e.displayName });
  // Registered before easyProcess's own handlers, so these run first: an unreachable or busy
  // callee is reported to the caller with its own SIP code (486 Busy Here, 480 Unavailable...)
  // before easyProcess ends the session.
  callee.addEventListener(CallEvents.Failed, (f) => {
    Logger.write(`forward: user ${target} failed: ${f.code} ${f.reason}`);
    e.call.reject(f.code >= 300 && f.code < 700 ? f.code : 480);
  });
  e.call.addEventListener(CallEvents.Disconnected, () => Logger.write("forward: call ended"));
  VoxEngine.easyProcess(e.call, callee, () => Logger.write(`forward: ${e.callerid} and ${target} connected`));
});
