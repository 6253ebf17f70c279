// require() with legacy and v28 modules: Modules.Player may be undefined, which must not throw.
require(Modules.Player);
require(Modules.WebSocket);
require(Modules.Conference);
require(Modules.Recorder);
require(Modules.ASR);
require(Modules.IVR);
Logger.write("Modules.Conference=" + Modules.Conference + " Modules.ApplicationStorage=" + Modules.ApplicationStorage);
Logger.write("AppEvents.Started=" + AppEvents.Started + " AppEvents.WebSocket=" + AppEvents.WebSocket);
Logger.write("CallEvents.PlaybackFinished=" + CallEvents.PlaybackFinished + " CallEvents.VideoTrackCreated=" + CallEvents.VideoTrackCreated);
Logger.write("PlayerEvents.PlaybackBuffering=" + PlayerEvents.PlaybackBuffering + " ConferenceEvents.ConferenceError=" + ConferenceEvents.ConferenceError);
Logger.write("AppEvents.NewWebSocketFailed=" + AppEvents.NewWebSocketFailed);
VoxEngine.terminate();
