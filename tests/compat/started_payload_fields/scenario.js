// AppEvents.Started payload fields and their types.
VoxEngine.addEventListener(AppEvents.Started, function (e) {
  Logger.write("name=" + e.name);
  Logger.write("sessionId: " + typeof e.sessionId);
  Logger.write("accountId: " + typeof e.accountId);
  Logger.write("applicationId: " + typeof e.applicationId);
  Logger.write("accessURL: " + typeof e.accessURL);
  Logger.write("accessSecureURL: " + typeof e.accessSecureURL);
  VoxEngine.terminate();
});
