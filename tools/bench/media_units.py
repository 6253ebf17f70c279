"""Media units at once: the tick cost of 50 players, 50 recorders and 10 ASR streams, and TTS render time.

One Graph + Mixer, no sockets, under uvloop (as the daemon), OPENBLAS_NUM_THREADS=1:
- 50 looping players: 25 play espeak-ng prompts (rendered once, shared as `Samples`), 25 play
  progress-tone ToneScripts (generated as they play);
- 50 RecorderUnits, player i -> recorder i, each with a real RecordingWriter in a temp dir (wav and
  mp3 half/half, mono), all on one RecordingThread;
- 10 AsrUnits (free speech, en) fed from 10 of the speech players, on one AsrThread.
Both threads are started inside the running loop, as in the daemon. Four configurations (players
only, +recorders, +ASR, all), each freshly built and measured over --seconds on the real 20 ms grid
(a loop timer per tick, time.monotonic() grid, late ticks caught up as the plane does) for:
- tick: `mixer.tick` wall time p50/p99/max and its main-thread CPU (time.thread_time) per tick;
- proc: process CPU per tick (time.process_time delta / ticks: the tick, the loop, and the recording
  and ASR threads' work in that window);
- late: tick start lateness against the grid p50/p99/max;
- rec drop: frames the RecordingWriters dropped (recording thread behind by its queue limit);
- asr drop / RTF / thread: frames the recognizers dropped, real-time factor per stream (ASR-thread CPU
  in the window / seconds of audio fed), and the ASR thread's load (its CPU / wall of the window);
- b2b: `mixer.tick` wall p50/p99 with the ticks run back to back (a pure CPU figure of the tick
  itself; the threads' queues then fill faster than real time, so drops are not counted there).
ASR decoders are loaded before the window (each stream is fed one frame and waited for), so the
window holds no model loading. Then a second table: tts.render (cold, no cache) of three texts
(short, medium, 1500 chars) in two voices (en, de): ms of CPU (ours plus espeak-ng's, from
RUSAGE_CHILDREN) and of wall per second of speech, median of --repeats.

    .venv/bin/python tools/bench/media_units.py [--seconds 20] [--repeats 3] [--only grid|tts]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: a threaded BLAS gives multi-ms spikes

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `appliance` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import uvloop

from appliance.engine.recognizers import AsrUnit
from appliance.engine.recorders import RecorderUnit, Recording
from appliance.media import tts
from appliance.media.asr import AsrThread, Recognizer
from appliance.media.audio import RATE, TICK_MS
from appliance.media.graph import Graph
from appliance.media.mixer import Mixer
from appliance.media.player import Player, Samples, Tones
from appliance.media.recording import RecordingStore, RecordingThread
from appliance.media.tones import KINDS, PROGRESS_TONES, ToneGenerator

TICK_S = TICK_MS / 1000
PLAYERS = 50
SPEECH_PLAYERS = PLAYERS // 2
RECORDERS = 50
ASR_STREAMS = 10
CATCH_UP = 5  # as the media plane: missed ticks run late rather than skipped, up to this many
B2B_TICKS_MAX = 1000  # back-to-back ticks per configuration
ASR_READY_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0
PROMPTS = (
    "Thank you for calling. Please hold while we connect you to the next available agent.",
    "For sales, press one. For support, press two. To repeat this menu, press nine.",
    "Your call is important to us. The estimated waiting time is four minutes.",
    "Please say yes or no after the tone, then press the pound key.",
    "We are sorry, all lines are busy at the moment. Please try again later.",
)
SHORT_TEXT = "Hello, please hold."
MEDIUM_TEXT = PROMPTS[0] + " " + PROMPTS[1]
TTS_TEXTS = {
    "short": SHORT_TEXT,
    "medium": MEDIUM_TEXT,
    "1500 chars": ((" ".join(PROMPTS) + " ") * 10)[: tts.MAX_TEXT_CHARS + 1].rsplit(" ", 1)[0],
}  # the last one: as long as say() takes, cut at a word
TTS_VOICES = ("en", "de")


@dataclass(frozen=True)
class Config:
    name: str
    recorders: bool
    asr: bool


CONFIGS = (
    Config("players only", False, False),
    Config("+recorders", True, False),
    Config("+ASR", False, True),
    Config("all", True, True),
)


@dataclass
class Row:
    config: Config
    ticks: int = 0
    tick_us: list[float] = field(default_factory=list)  # mixer.tick wall, per tick
    tick_cpu_us: float = 0.0  # mean main-thread CPU of mixer.tick
    proc_us: float = 0.0  # process CPU per tick, all threads
    late_ms: list[float] = field(default_factory=list)
    rec_drops: int = 0
    rec_frames: int = 0
    asr_drops: int = 0
    asr_frames: int = 0
    asr_rtf: float = 0.0
    asr_load: float = 0.0  # ASR-thread CPU / wall
    asr_captures: int = 0
    asr_results: int = 0
    b2b_us: list[float] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Scene:
    """The graph of one configuration, with its threads; `close()` stops everything (safe twice)."""

    def __init__(self, config: Config, prompts: list[Samples], directory: Path) -> None:
        self.config = config
        self.graph = Graph()
        self.mixer = Mixer(self.graph)
        self.events: Counter[str] = Counter()
        self.players: list[Player] = []
        self.recordings: list[Recording] = []
        self.recognizers: list[Recognizer] = []
        self.rec_thread: RecordingThread | None = None
        self.asr_thread: AsrThread | None = None
        scripts = [tones[kind] for tones in PROGRESS_TONES.values() for kind in KINDS]
        for i in range(PLAYERS):
            player = Player(f"player{i}", self._player_event, loop=True)
            if i < SPEECH_PLAYERS:
                source = Samples(prompts[i % len(prompts)].samples)
                for _ in range(i * 7):  # stagger the players sharing a prompt
                    source.next_frame()
                player.load(source)
            else:
                player.load(Tones(ToneGenerator(scripts[i % len(scripts)], loop=True)))
            self.graph.add(player)
            self.players.append(player)
        if config.recorders:
            self.rec_thread = RecordingThread()
            self.rec_thread.start()
            store = RecordingStore(directory, self.rec_thread)
            for i in range(RECORDERS):
                writer = store.open(f"bench{i}", "wav" if i % 2 == 0 else "mp3", 1, now=time.time())
                recording = Recording(writer, "", stereo=False, started=0.0)
                unit = RecorderUnit(f"rec{i}", recording)
                self.graph.add(unit)
                self.graph.send(f"player{i}", unit.id)
                self.recordings.append(recording)
        if config.asr:
            self.asr_thread = AsrThread()
            self.asr_thread.start()
            for i in range(ASR_STREAMS):
                recognizer = Recognizer(self.asr_thread, on_event=self._asr_event, language="en")
                unit_id = f"asr{i}"
                self.graph.add(AsrUnit(unit_id, recognizer))
                self.graph.send(f"player{i}", unit_id)  # speech players only
                self.recognizers.append(recognizer)

    def _player_event(self, name: str, data: dict[str, Any]) -> None:
        self.events[f"player.{name}"] += 1

    def _asr_event(self, name: str, data: dict[str, object]) -> None:
        self.events[f"asr.{name}"] += 1

    async def asr_ready(self) -> None:
        """Load every stream's decoder before measuring: one frame each, then wait until all were handled."""
        if not self.recognizers:
            return
        frame = np.zeros(RATE * TICK_MS // 1000, dtype=np.int16)
        for recognizer in self.recognizers:
            recognizer.feed(frame)
        deadline = time.monotonic() + ASR_READY_TIMEOUT_S
        while any(r.cpu_s == 0.0 for r in self.recognizers):
            if time.monotonic() > deadline:
                raise RuntimeError("the ASR thread did not load its decoders in time")
            await asyncio.sleep(0.05)

    def asr_cpu(self) -> float:
        return sum(r.cpu_s for r in self.recognizers)

    def asr_fed(self) -> tuple[int, int]:
        return sum(r.accepted for r in self.recognizers), sum(r.dropped for r in self.recognizers)

    def rec_fed(self) -> tuple[int, int]:
        return (sum(r.writer.accepted for r in self.recordings), sum(r.writer.dropped for r in self.recordings))

    async def close(self) -> None:
        for recognizer in self.recognizers:
            recognizer.close()
        for recording in self.recordings:
            recording.writer.close()
        loop = asyncio.get_running_loop()
        if self.asr_thread is not None:
            await loop.run_in_executor(None, self.asr_thread.stop)
        if self.rec_thread is not None:
            await self.rec_thread.astop()
        failed = [r.writer.path.name for r in self.recordings if r.writer.failed or not r.writer.done.is_set()]
        if failed:
            print(f"warning: {len(failed)} recordings not closed cleanly: {failed[:3]}", file=sys.stderr)


async def grid(scene: Scene, seconds: float, row: Row) -> None:
    """Tick on the real 20 ms grid, as the media plane does: a timer per tick, late ticks caught up."""
    loop = asyncio.get_running_loop()
    mixer = scene.mixer
    ticks = round(seconds / TICK_S)
    done: asyncio.Future[None] = loop.create_future()
    # The grid in time.monotonic(): uvloop's loop.time() has 1 ms resolution and is cached per loop pass.
    start = time.monotonic() + TICK_S
    state = {"k": 0, "cpu": 0.0}
    walls: list[float] = []
    late: list[float] = []

    def on_timer() -> None:
        ran = 0
        while state["k"] < ticks and ran < CATCH_UP:
            due = start + state["k"] * TICK_S
            now = time.monotonic()
            if now < due:
                break
            late.append((now - due) * 1000)
            c0 = time.thread_time()
            t0 = time.perf_counter()
            mixer.tick(now)
            walls.append((time.perf_counter() - t0) * 1e6)
            state["cpu"] += time.thread_time() - c0
            state["k"] += 1
            ran += 1
        if state["k"] >= ticks:
            done.set_result(None)
            return
        loop.call_later(max(0.0, start + state["k"] * TICK_S - time.monotonic()), on_timer)

    asr_cpu0 = scene.asr_cpu()
    asr0, asr_drop0 = scene.asr_fed()
    rec0, rec_drop0 = scene.rec_fed()
    wall0 = time.monotonic()
    cpu0 = time.process_time()
    loop.call_later(TICK_S, on_timer)
    await done
    cpu1 = time.process_time()
    wall = time.monotonic() - wall0
    asr1, asr_drop1 = scene.asr_fed()
    rec1, rec_drop1 = scene.rec_fed()
    row.ticks = ticks
    row.tick_us = walls
    row.late_ms = late
    row.tick_cpu_us = state["cpu"] / ticks * 1e6
    row.proc_us = (cpu1 - cpu0) / ticks * 1e6
    row.rec_frames, row.rec_drops = rec1 - rec0, rec_drop1 - rec_drop0
    row.asr_frames, row.asr_drops = asr1 - asr0, asr_drop1 - asr_drop0
    if scene.recognizers:
        asr_cpu = scene.asr_cpu() - asr_cpu0
        audio_s = (row.asr_frames + row.asr_drops) * TICK_S  # what was sent to the streams
        row.asr_rtf = asr_cpu / audio_s if audio_s else float("nan")
        row.asr_load = asr_cpu / wall


def back_to_back(scene: Scene, ticks: int) -> list[float]:
    mixer = scene.mixer
    now = time.monotonic()
    walls: list[float] = []
    for k in range(ticks):
        t0 = time.perf_counter()
        mixer.tick(now + k * TICK_S)
        walls.append((time.perf_counter() - t0) * 1e6)
    return walls


async def bench_config(config: Config, prompts: list[Samples], seconds: float) -> Row:
    row = Row(config)
    with tempfile.TemporaryDirectory(prefix="voxgate-bench-") as tmp:
        scene = Scene(config, prompts, Path(tmp))
        try:
            await scene.asr_ready()
            await grid(scene, 1.0, Row(config))  # warm-up: files opened, plans built, caches warm
            await grid(scene, seconds, row)
            row.asr_captures = scene.events["asr.CaptureStarted"]
            row.asr_results = scene.events["asr.Result"]
            row.b2b_us = back_to_back(scene, min(B2B_TICKS_MAX, round(seconds / TICK_S)))
        finally:
            await scene.close()
    return row


GRID_HEAD = (f"{'units':<13} {'ticks':>5} | {'tick p50/p99/max µs':>21} {'cpu µs':>7} | {'proc µs':>7} | "
             f"{'late p50/p99/max ms':>19} | {'rec drop':>8} | {'asr drop':>8} {'RTF':>6} {'thread':>6} "
             f"{'capt/res':>9} | {'b2b p50/p99 µs':>14}")


def grid_line(row: Row) -> str:
    c = row.config
    units = f"{PLAYERS}p" + (f"+{RECORDERS}r" if c.recorders else "") + (f"+{ASR_STREAMS}a" if c.asr else "")
    tick = f"{pct(row.tick_us, 50):.0f}/{pct(row.tick_us, 99):.0f}/{max(row.tick_us):.0f}"
    late = f"{pct(row.late_ms, 50):.2f}/{pct(row.late_ms, 99):.2f}/{max(row.late_ms):.2f}"
    rec = f"{row.rec_drops}" if c.recorders else "-"
    if c.asr:
        events = f"{row.asr_captures}/{row.asr_results}"
        asr = f"{row.asr_drops:>8} {row.asr_rtf:>6.3f} {row.asr_load:>5.0%} {events:>9}"
    else:
        asr = f"{'-':>8} {'-':>6} {'-':>6} {'-':>9}"
    b2b = f"{pct(row.b2b_us, 50):.0f}/{pct(row.b2b_us, 99):.0f}"
    return (f"{c.name + ' ' + units:<13.13} {row.ticks:>5} | {tick:>21} {row.tick_cpu_us:>7.0f} | "
            f"{row.proc_us:>7.0f} | {late:>19} | {rec:>8} | {asr} | {b2b:>14}")


@dataclass
class TtsRow:
    text: str
    voice: str
    chars: int
    audio_s: float
    cpu_ms: float  # per render: ours + espeak-ng's
    wall_ms: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def bench_tts(repeats: int) -> list[TtsRow]:
    rows = []
    for voice_name in TTS_VOICES:
        voice = tts.voice_for(voice_name)
        for label, text in TTS_TEXTS.items():
            cpus: list[float] = []
            walls: list[float] = []
            audio_s = 0.0
            for _ in range(repeats):
                c0, k0, t0 = time.process_time(), _children_cpu(), time.perf_counter()
                rendered = await tts.render(text, voice)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0 + _children_cpu() - k0)
                audio_s = len(rendered.samples) / RATE
            rows.append(TtsRow(label, voice.espeak, len(text), audio_s, statistics.median(cpus) * 1000,
                               statistics.median(walls) * 1000))
    return rows


TTS_HEAD = (f"{'text':<10} {'voice':<6} {'chars':>5} {'speech s':>8} | {'cpu ms':>7} {'wall ms':>7} | "
            f"{'cpu ms/s speech':>15} {'wall ms/s speech':>16}")


def tts_line(row: TtsRow) -> str:
    return (f"{row.text:<10} {row.voice:<6} {row.chars:>5} {row.audio_s:>8.2f} | {row.cpu_ms:>7.1f} "
            f"{row.wall_ms:>7.1f} | {row.cpu_ms / row.audio_s:>15.1f} {row.wall_ms / row.audio_s:>16.1f}")


async def run(args: argparse.Namespace) -> None:
    if args.only in (None, "grid"):
        en = tts.voice_for("en")
        prompts = [Samples((await tts.render(text, en)).samples) for text in PROMPTS]
        print(f"{PLAYERS} looping players ({SPEECH_PLAYERS} TTS prompts, {PLAYERS - SPEECH_PLAYERS} progress "
              f"tones); recorders: {RECORDERS} (wav/mp3 half/half, one RecordingThread); ASR: {ASR_STREAMS} free-"
              f"speech streams (one AsrThread); {args.seconds:g} s on the 20 ms grid per row, uvloop, "
              f"{os.cpu_count()} CPUs")
        print(GRID_HEAD, flush=True)
        for config in CONFIGS:
            row = await bench_config(config, prompts, args.seconds)
            print(grid_line(row), flush=True)
        print("tick: mixer.tick wall and main-thread CPU; proc: process CPU per tick, all threads; RTF: ASR CPU "
              "per second of audio per stream; thread: ASR worker process load;\n"
              "capt/res: ASR CaptureStarted/Result events (whole run)")
    if args.only in (None, "tts"):
        if args.only is None:
            print()
        print(f"tts.render, cold (no cache), espeak-ng, median of {args.repeats}; cpu = ours + espeak-ng's")
        print(TTS_HEAD, flush=True)
        for tts_row in await bench_tts(args.repeats):
            print(tts_line(tts_row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per configuration")
    parser.add_argument("--repeats", type=int, default=3, help="renders per TTS text and voice")
    parser.add_argument("--only", choices=("grid", "tts"), default=None)
    args = parser.parse_args()
    try:
        uvloop.run(run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
