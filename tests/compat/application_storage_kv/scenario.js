// ApplicationStorage: put/get/keys/remove; get of a missing key resolves to null.
require(Modules.ApplicationStorage);
VoxEngine.addEventListener(AppEvents.Started, async () => {
  const put = await ApplicationStorage.put("visits:alice", "3", 3600);
  Logger.write(`put ${put.key}=${put.value} expireAt is number: ${typeof put.expireAt === "number"}`);
  await ApplicationStorage.put("visits:bob", "5", 3600);
  await ApplicationStorage.put("config:greeting", "hello", 0);
  const got = await ApplicationStorage.get("visits:alice");
  Logger.write(`get ${got.key} -> ${got.value}`);
  const page = await ApplicationStorage.keys("visits");
  Logger.write(`keys(visits): ${page.keys.slice().sort().join(",")}`);
  const removed = await ApplicationStorage.remove("visits:bob");
  Logger.write(`removed ${removed.key}`);
  const missing = await ApplicationStorage.get("visits:bob");
  Logger.write(`get after remove: ${missing}`);
  const none = await ApplicationStorage.get("no:such:key");
  Logger.write(`get missing: ${none}`);
  VoxEngine.terminate();
});
