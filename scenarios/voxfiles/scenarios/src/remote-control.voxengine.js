// A session driven over HTTP: start it with StartScenarios, then send requests to its
// media_session_access_url. Each request is counted and answered; "stop" ends the session.
let requests = 0;

VoxEngine.addEventListener(AppEvents.Started, (e) => {
  Logger.write(`remote-control session ${e.sessionId} listening at ${e.accessURL}`);
});

VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  requests += 1;
  Logger.write(`${e.method} ${e.path}: ${e.content}`);
  if (e.content === "stop") {
    VoxEngine.terminate();
    return JSON.stringify({ requests, stopping: true });
  }
  return JSON.stringify({ requests, customData: VoxEngine.customData() });
});
