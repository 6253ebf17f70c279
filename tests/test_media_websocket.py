"""WebSockets in scenarios, against a real WebSocket server in the test: text both ways, a player's
audio streamed to the peer as ULAW (measured there), and the peer's PCM16 audio played into a
recorder (measured in the file)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import wave
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
from aiohttp import web
from daemon_helpers import client_session, create_api_key, running_daemon, start_scenarios, wait_until
from engine_helpers import Lines, engine_harness
from sip_helpers import log_lines, voxfiles

from appliance.engine.players import MediaSources
from appliance.engine.recorders import Recordings
from appliance.media.codecs import ulaw_decode
from appliance.media.fetch import MediaFetcher
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.media.recording import RecordingStore, RecordingThread
from appliance.media.tts import TtsCache

SCRIPT = """
const ws = VoxEngine.createWebSocket(URL);
const recorder = VoxEngine.createRecorder({lossless: true});
const tone = VoxEngine.createToneScriptPlayer("1000@-10;*(*/0/1)");
ws.onopen = () => {
  Logger.write("open " + ws.readyState);
  ws.send("hello");
  tone.sendMediaTo(ws, {encoding: "ULAW", tag: "out"});
  setTimeout(() => tone.stopMediaTo(ws), 1000);
  ws.sendMediaTo(recorder);
};
ws.onmessage = (e) => Logger.write("message " + e.text);
ws.addEventListener(WebSocketEvents.MEDIA_STARTED, (e) => Logger.write("media started " + e.encoding));
ws.addEventListener(WebSocketEvents.MEDIA_ENDED, (e) => {
  Logger.write("media ended");
  setTimeout(() => recorder.stop(), 1000);  // after our own stream's stop has gone out too
});
recorder.addEventListener(RecorderEvents.Stopped, () => ws.close());
ws.onclose = (e) => { Logger.write("closed " + e.code); VoxEngine.terminate(); };
"""


class Peer:
    """The far end: answers text, keeps the media it gets, sends 1 s of 600 Hz PCM16 at 16 kHz."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for message in ws:
            data = message.data
            if data == "hello":
                await ws.send_str("world")
                await self.stream(ws)
                continue
            parsed = json.loads(data)
            self.got.append(parsed)
        return ws

    async def stream(self, ws: web.WebSocketResponse) -> None:
        rate = 16000
        t = np.arange(rate) / rate
        audio = (8000 * np.sin(2 * np.pi * 600 * t)).astype("<i2")
        await ws.send_str(json.dumps({"event": "start", "sequenceNumber": 0, "start": {
            "mediaFormat": {"encoding": "PCM16", "sampleRate": rate}, "tag": "in"}}))
        chunk = rate // 50
        for n in range(50):  # faster than real time: the box buffers
            payload = base64.b64encode(audio[n * chunk:(n + 1) * chunk].tobytes()).decode()
            await ws.send_str(json.dumps({"event": "media", "sequenceNumber": n + 1,
                                          "media": {"chunk": n + 1, "timestamp": n * chunk, "payload": payload}}))
        await ws.send_str(json.dumps({"event": "stop", "sequenceNumber": 51,
                                      "stop": {"mediaInfo": {"bytesSent": len(audio) * 2, "duration": 1}}}))


def peak_hz(samples: npt.NDArray[np.float64], rate: int) -> float:
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(np.abs(np.fft.rfft(samples)))])


async def test_text_and_media_both_ways_over_a_websocket(tmp_path: Path) -> None:
    peer = Peer()
    app = web.Application()
    app.router.add_get("/ws", peer.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"ws://127.0.0.1:{runner.addresses[0][1]}/ws"
    thread = RecordingThread()
    thread.start()
    (tmp_path / "records").mkdir()
    try:
        async with engine_harness(virtual=False) as h:
            plane = MediaPlane(h.clock, RtpPorts(48000, 48100))
            fetcher = MediaFetcher(tmp_path / "media")
            h.engine.plane = plane
            h.engine.sources = MediaSources(fetcher, TtsCache(tmp_path / "tts", 1 << 20))
            h.engine.recordings = Recordings(RecordingStore(tmp_path / "records", thread), "http://box")
            plane.start()
            try:
                lines = Lines()
                session = h.start(f'const URL = "{url}";\n' + SCRIPT, lines=lines)
                await asyncio.wait_for(asyncio.shield(session.ended), 30)
            finally:
                plane.close()
                await fetcher.close()
    finally:
        await runner.cleanup()
        await thread.astop()
    print("\n" + "\n".join(lines.script))
    assert lines.script[0] == "open open"
    assert "message world" in lines.script and "media started PCM16" in lines.script
    assert lines.script.index("media ended") < lines.script.index("closed 1000")
    # What the peer got: start (ULAW, tag), about a second of media, stop.
    events = [m["event"] for m in peer.got]
    assert events[0] == "start" and events[-1] == "stop" and 40 <= events.count("media") <= 60, events
    assert peer.got[0]["start"]["mediaFormat"] == {"encoding": "ULAW", "sampleRate": 8000}
    assert peer.got[0]["start"]["tag"] == "out"
    sent = np.concatenate([ulaw_decode(np.frombuffer(base64.b64decode(m["media"]["payload"]), dtype=np.uint8))
                           for m in peer.got if m["event"] == "media"]).astype(np.float64)
    assert abs(peak_hz(sent, 8000) - 1000) < 5
    # What the box played from the peer, in the recording: 600 Hz for about a second.
    (recording,) = sorted((tmp_path / "records").glob("*.wav"))
    with wave.open(str(recording), "rb") as wav:
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)
    loud = np.abs(audio) > 2000
    assert abs(peak_hz(audio, 8000) - 600) < 5
    assert 0.8 < loud.sum() / 8000 * 1.6 < 1.4  # about a second of tone (a sine is above 2000 about 60 % of the time)


INCOMING = """
if (VoxEngine.customData() === "allow") VoxEngine.allowWebSocketConnections();
Logger.write("ready");
VoxEngine.addEventListener(AppEvents.WebSocket, (e) => {
  const ws = e.websocket;
  Logger.write("incoming " + ws.readyState + " " + (ws.url === e.path ? "" : "url ok"));
  ws.onmessage = (m) => ws.send("echo " + m.text);
  ws.onclose = () => { Logger.write("closed"); VoxEngine.terminate(); };
});
VoxEngine.addEventListener(AppEvents.NewWebSocketFailed, (e) => {
  Logger.write("refused: " + e.reason);
  VoxEngine.terminate();
});
"""


async def test_incoming_websockets_on_the_session_url(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    key = create_api_key(tmp_path / "data")
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", INCOMING)) as daemon:
        async with client_session() as client:
            allowed = await start_scenarios(client, daemon, key, "in", "allow")
            first = allowed["call_session_history_id"]
            assert wait_until(lambda: "ready" in log_lines(daemon, first), 10)  # the scenario has run
            url = allowed["media_session_access_url"].replace("http://", "ws://")
            async with client.ws_connect(url, protocols=("chat",)) as ws:
                await ws.send_str("hi")
                reply = await ws.receive(timeout=10)
                assert reply.data == "echo hi"
            refused = await start_scenarios(client, daemon, key, "in", "")
            with contextlib.suppress(aiohttp.WSServerHandshakeError):
                async with client.ws_connect(refused["media_session_access_url"].replace("http://", "ws://")):
                    raise AssertionError("a session that did not allow WebSockets accepted one")
        second = refused["call_session_history_id"]
        assert wait_until(lambda: "closed" in log_lines(daemon, first), 10), log_lines(daemon, first)
        assert wait_until(lambda: any("refused" in line for line in log_lines(daemon, second)), 10)
    assert log_lines(daemon, first)[:3] == ["ready", "incoming open url ok", "closed"], log_lines(daemon, first)
    assert "allowWebSocketConnections" in next(line for line in log_lines(daemon, second) if "refused" in line)
