"""Players in scenarios: bad input gives the documented events, good input plays (engine, no calls)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web
from engine_helpers import Harness, Lines, engine_harness

from appliance.engine.players import MediaSources
from appliance.media.fetch import MediaFetcher
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.media.tts import TtsCache

SCRIPT = """
const results = {};
function watch(name, player) {
  player.addEventListener(PlayerEvents.PlaybackReady, () => Logger.write(name + " ready"));
  player.addEventListener(PlayerEvents.Started, (e) => Logger.write(name + " started " + e.duration));
  player.addEventListener(PlayerEvents.PlaybackFinished, (e) => {
    Logger.write(name + " finished" + (e.error ? ": " + e.error : ""));
    results[name] = true;
    if (Object.keys(results).length === 7) VoxEngine.terminate();
  });
  // Everything plays into a conference so the tick pulls it.
  player.sendMediaTo(conf);
}
const conf = VoxEngine.createConference();
watch("missing", VoxEngine.createURLPlayer(BASE + "/missing.mp3"));
watch("corrupt", VoxEngine.createURLPlayer(BASE + "/corrupt.mp3"));
watch("text", VoxEngine.createURLPlayer({url: BASE + "/text"}));
watch("closed", VoxEngine.createURLPlayer("http://127.0.0.1:" + CLOSED + "/x.wav"));
watch("tone error", VoxEngine.createToneScriptPlayer("440@-19;*(1/x/1)"));
watch("too long", VoxEngine.createTTSPlayer("a".repeat(1501)));
watch("tone", VoxEngine.createToneScriptPlayer("440@-19;1(.1/.1/1)"));
try {
  for (let i = 0; i < 5; i++) VoxEngine.createToneScriptPlayer("440@-19;*(1/0/1)");
} catch (e) { Logger.write("limit: " + e.message); }
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve() -> tuple[web.AppRunner, str]:
    async def corrupt(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xfb" + b"\x00" * 500)

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>not audio</html>")

    app = web.Application()
    app.router.add_get("/corrupt.mp3", corrupt)
    app.router.add_get("/text", text)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def run_with_media(h: Harness, tmp_path: Path, script: str) -> Lines:
    plane = MediaPlane(h.clock, RtpPorts(47000, 47100))
    fetcher = MediaFetcher(tmp_path / "media")
    h.engine.plane = plane
    h.engine.sources = MediaSources(fetcher, TtsCache(tmp_path / "tts", 1 << 20))
    plane.start()
    try:
        lines = Lines()
        session = h.start(script, lines=lines)
        await asyncio.wait_for(asyncio.shield(session.ended), 30)
        assert not session.system_error, lines.system
        return lines
    finally:
        plane.close()
        await fetcher.close()


async def test_bad_media_gives_playback_finished_with_an_error_and_the_tick_keeps_time(tmp_path: Path) -> None:
    runner, base = await serve()
    try:
        async with engine_harness(virtual=False) as h:
            script = f'const BASE = "{base}"; const CLOSED = {closed_port()};\n' + SCRIPT
            lines = await run_with_media(h, tmp_path, script)
            plane_stats = h.engine.plane.stats if h.engine.plane is not None else None
    finally:
        await runner.cleanup()
    finished = {line.split(" finished")[0]: line for line in lines.script if " finished" in line}
    print("\n" + "\n".join(lines.script))
    assert "http status 404" in finished["missing"]
    assert "error" not in finished["tone"] and finished["tone"] == "tone finished"
    assert "tone started 1000" in lines.script
    for name in ("corrupt", "text", "closed", "tone error", "too long"):
        assert ": " in finished[name], finished[name]  # each with its error text
    assert "1500" in finished["too long"]
    assert any(line.startswith("limit: at most 10 media players") for line in lines.script)
    assert plane_stats is not None and plane_stats.skipped == 0


SEQUENCE = """
const conf = VoxEngine.createConference();
const seq = VoxEngine.createSequencePlayer({segments: [
  {text: "First part."},
  {text: "And the second part of the sequence.", parameters: {voice: VoiceList.Google.de_DE_Standard_A}},
]});
seq.addMarker(100, 1);
for (const name of ["PlaybackReady", "Started", "PlaybackMarkerReached", "PlaybackFinished"]) {
  seq.addEventListener(SequencePlayerEvents[name], (e) => {
    Logger.write(e.name + (e.offset !== undefined ? " " + e.offset : "") + (e.duration ? " " + e.duration : "") +
                 (e.sequencePlayer === seq ? "" : " (wrong player)") + (e.error ? " " + e.error : ""));
    if (name === "PlaybackFinished") VoxEngine.terminate();
  });
}
seq.sendMediaTo(conf);
try { VoxEngine.createSequencePlayer({segments: []}); } catch (e) { Logger.write(e.name); }
"""


async def test_a_sequence_player_plays_its_segments_in_turn(tmp_path: Path) -> None:
    async with engine_harness(virtual=False) as h:
        lines = await run_with_media(h, tmp_path, SEQUENCE)
    script = lines.script
    print("\n" + "\n".join(script))
    assert script[0] == "TypeError"
    names = [line.split()[0] for line in script[1:]]
    assert names == ["SequencePlayer.PlaybackReady", "SequencePlayer.Started", "SequencePlayer.PlaybackMarkerReached",
                     "SequencePlayer.PlaybackFinished"], script
    assert all("wrong player" not in line for line in script)
    assert script[3] == "SequencePlayer.PlaybackMarkerReached 100"
    assert int(script[2].split()[1]) > 2000  # both segments' length


async def test_an_unknown_voice_ends_the_prompt_with_an_error(tmp_path: Path) -> None:
    async with engine_harness(virtual=False) as h:
        lines = await run_with_media(h, tmp_path, """
const conf = VoxEngine.createConference();
const voices = ["NotAVoice", VoiceList.Amazon.fil_PH_Standard_A || "VoiceList.Amazon.fil_PH_X"];
let left = voices.length;
for (const voice of voices) {
  const player = VoxEngine.createTTSPlayer("Hello", {voice});
  player.addEventListener(PlayerEvents.PlaybackFinished, (e) => {
    Logger.write(voice + ": " + (e.error || "played"));
    if (--left === 0) VoxEngine.terminate();
  });
  player.sendMediaTo(conf);
}
""")
    print("\n" + "\n".join(lines.script))
    unknown = next(line for line in lines.script if line.startswith("NotAVoice"))
    assert "unknown voice" in unknown
    fallback = next(line for line in lines.script if not line.startswith("NotAVoice"))
    assert fallback.endswith(": played")  # a real constant of a language espeak-ng lacks: the fallback speaks
