// Ring group with async/await and Promise.any: everybody is busy or refuses, so the caller is rejected.
function outcome(call) {
  return new Promise((resolve, reject) => {
    call.addEventListener(CallEvents.Connected, () => resolve(call));
    call.addEventListener(CallEvents.Failed, (e) => reject(new Error(`${call.number()}:${e.code}`)));
  });
}
VoxEngine.addEventListener(AppEvents.CallAlerting, async (e) => {
  const legs = ["101", "102", "103"].map((u) => VoxEngine.callUser({ username: u, callerid: e.callerid }));
  try {
    const winner = await Promise.any(legs.map(outcome));
    Logger.write(`unexpected winner ${winner.number()}`);
  } catch (err) {
    Logger.write(`${err.constructor.name}: ${err.errors.map((x) => x.message).sort().join(", ")}`);
    e.call.reject(480);
  }
  e.call.addEventListener(CallEvents.Disconnected, () => { Logger.write("caller rejected"); VoxEngine.terminate(); });
});
