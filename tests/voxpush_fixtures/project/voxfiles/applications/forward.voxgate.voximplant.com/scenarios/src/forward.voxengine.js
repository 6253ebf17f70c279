// Forwards every call to the local user 100.
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
    const out = VoxEngine.callUser("100", e.callerid);
    VoxEngine.easyProcess(e.call, out);
});
