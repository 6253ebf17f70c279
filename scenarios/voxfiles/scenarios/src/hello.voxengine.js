// The smallest scenario: log when the session starts, then end it.
VoxEngine.addEventListener(AppEvents.Started, (e) => {
  Logger.write(`Hello from session ${e.sessionId}, custom data: ${VoxEngine.customData()}`);
  VoxEngine.terminate();
});
