// removeEventListener(event, handler) removes one handler; without a handler it removes them all.
var hits = [];
function a() { hits.push("a"); }
function b() { hits.push("b"); }
function c() { hits.push("c"); }
VoxEngine.addEventListener(AppEvents.CallAlerting, function (e) {
  var call = e.call;
  call.addEventListener(CallEvents.ToneReceived, a);
  call.addEventListener(CallEvents.ToneReceived, b);
  call.addEventListener(CallEvents.ToneReceived, c);
  call.removeEventListener(CallEvents.ToneReceived, b);
  call.addEventListener(CallEvents.ToneReceived, function (ev) {
    hits.push(ev.tone);
    if (ev.tone === "1") call.removeEventListener(CallEvents.ToneReceived);
  });
  call.addEventListener(CallEvents.Connected, function () {
    call.handleTones(true);
    setTimeout(function () {
      Logger.write("handlers ran: " + hits.join(" "));
      call.hangup();
    }, 4000);
  });
  call.addEventListener(CallEvents.Disconnected, function () { VoxEngine.terminate(); });
  call.answer();
});
