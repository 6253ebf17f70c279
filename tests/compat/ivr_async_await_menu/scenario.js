// Modern style: Promise-wrapped events and async/await.
function once(target, event) {
  return new Promise((resolve) => {
    const handler = (e) => { target.removeEventListener(event, handler); resolve(e); };
    target.addEventListener(event, handler);
  });
}

async function sayAndWait(call, text) {
  call.say(text, { voice: VoiceList.Default.en_US_Female });
  const e = await once(call, CallEvents.PlaybackFinished);
  return e.error ? "error" : "ok";
}

function nextDigit(call, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { call.removeEventListener(CallEvents.ToneReceived, onTone); resolve(null); }, ms);
    function onTone(e) { clearTimeout(timer); call.removeEventListener(CallEvents.ToneReceived, onTone); resolve(e.tone); }
    call.addEventListener(CallEvents.ToneReceived, onTone);
  });
}

VoxEngine.addEventListener(AppEvents.CallAlerting, async ({ call }) => {
  call.answer();
  await once(call, CallEvents.Connected);
  Logger.write("connected");
  call.handleTones(true);
  const digit = await nextDigit(call, 5000);
  Logger.write(`menu choice: ${digit}`);
  Logger.write(`prompt: ${await sayAndWait(call, digit === "2" ? "Sales" : "Support")}`);
  const second = await nextDigit(call, 2000);
  Logger.write(`second digit: ${second}`);
  call.hangup();
  await once(call, CallEvents.Disconnected);
  Logger.write("disconnected");
  VoxEngine.terminate();
});
