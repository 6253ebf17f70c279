// Greets whoever calls: the first scenario of the inbound rule.
VoxEngine.addEventListener(AppEvents.Started, () => {
    Logger.write(`greeting ${VoxEngine.customData()}`);
    setTimeout(() => {
        Logger.write("greeting done");
        VoxEngine.terminate();
    }, 1000);
});
