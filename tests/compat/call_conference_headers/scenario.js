// X- headers given to callConference arrive in the conference session's CallAlerting.
VoxEngine.addEventListener(AppEvents.Started, () => {
  if (VoxEngine.customData() !== "caller") return;
  const leg = VoxEngine.callConference("sales-room", "+15550002222", "Caller", { "X-Ticket": "T-1001", "X-Lang": "en" });
  leg.addEventListener(CallEvents.Connected, () => leg.hangup());
  leg.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write(`conference ${e.destination}: X-Ticket=${e.headers["X-Ticket"]} X-Lang=${e.headers["X-Lang"]}`);
  e.call.answer();
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
