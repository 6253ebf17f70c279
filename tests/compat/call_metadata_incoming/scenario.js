// Metadata of an incoming call, read from the CallAlerting payload and the Call object.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  Logger.write(`event name: ${e.name}`);
  Logger.write(`destination: ${e.destination}`);
  Logger.write(`callerid: ${e.callerid}`);
  Logger.write(`headers is object: ${typeof e.headers === "object" && e.headers !== null}`);
  Logger.write(`call.incoming(): ${call.incoming()}`);
  Logger.write(`call.number(): ${call.number()}`);
  Logger.write(`call.callerid(): ${call.callerid()}`);
  Logger.write(`call.state(): ${call.state()}`);
  Logger.write(`typeof call.id(): ${typeof call.id()}`);
  Logger.write(`toString is string: ${typeof call.toString() === "string" && String(call).length > 0}`);
  Logger.write(`clientType known: ${["pstn", "sip", "user", "wab"].indexOf(call.clientType()) >= 0}`);
  call.reject(486);
  VoxEngine.terminate();
});
