// An unhandled Promise rejection is fatal too.
VoxEngine.addEventListener(AppEvents.Started, async () => {
  Logger.write("started");
  await new Promise((resolve) => setTimeout(resolve, 1000));
  throw new Error("lookup failed");
});
VoxEngine.addEventListener(AppEvents.Terminating, (e) => Logger.write(`Terminating systemError=${e.systemError}`));
