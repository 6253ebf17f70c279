"""Whole calls through the appliance: call setups per second sustained, and concurrent bridged calls with media.

sipp (tools/bench/sipp/uac_rtp.xml) calls the appliance from 127.0.0.1, a SIP trunk, so no digest
authentication. The scenario answers, plays a 1 s ToneScript prompt (or, with --prompt say, a
`call.say` TTS sentence), then calls a sipp UAS (tools/bench/sipp/uas_echo.xml) with
`VoxEngine.callSIP` and bridges the two with `VoxEngine.sendMediaBetween`; when the caller hangs up the
session ends and the appliance hangs up the UAS. The caller streams a 440 Hz PCMU file (sipp's
`rtp_stream`) for as long as it holds; the UAS's media is an RTP echo in this process that counts
what the appliance relays to it (caller -> appliance -> UAS), so "relayed" is the appliance's
forwarding in that direction (the echo goes back through it too).

Two row groups, each row on a fresh daemon (so its tick statistics cover that row only):
1. calls per second sustained: sipp at each rate (5, 10, 20 cps) for --cps-seconds with calls of
   --cps-hold s: calls attempted, completed and failed; the achieved setup rate (between the first
   and the last 200 OK); setup time (INVITE to 200 OK, sipp's -trace_rtt, 1 ms resolution) median and
   p95; the appliance's CPU in % of a core over the run; tick lateness p50/p99/max; tick overruns;
   the most sessions live at once (GetHealth polled twice a second);
2. concurrent calls held with media: N (25, 50, 100) calls brought up at --ramp-rate cps and held
   --hold s; over the steady part (from when all N are bridged until the first hangs up): calls up
   (the fewest bridged during the window), CPU % and CPU ms per call per second, tick lateness
   p50/p99, overruns, RTP packets relayed per second (and in % of N x 50), failed calls.

Tick lateness percentiles are the daemon's (GetHealth: its last 3,000 ticks, i.e. one minute), read
at the end of the run or window: on a fresh daemon that is the run plus its start and warm-up (a few
seconds). Max lateness is since the daemon started; `*` marks a max reached before the measured
part. Overruns are counted over the measured part only (ticks that ended after the next tick was
due, plus ticks skipped). The daemon is pinned to core 0, sipp and this script to the other
core(s). Everything is on 127.0.0.1; every process is stopped and the temp dir is removed on exit,
also on Ctrl-C. Needs sipp (Debian sip-tester, built with RTPSTREAM). After the tables come the
daemon's warnings and errors, and the failures sipp saw.

    .venv/bin/python tools/bench/calls.py [--quick] [--rates 5,10,20] [--cps-seconds 30] [--cps-hold 3]
                                          [--concurrent 25,50,100] [--hold 30] [--ramp-rate 10]
                                          [--prompt tone|say] [--only cps|concurrent] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `tools.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.store.apikeys import ApiKeys
from appliance.store.db import Database
from tools.bench.sip_setup import (
    APPLIANCE,
    CLK_TCK,
    HOST,
    SERVER_CORE,
    Processes,
    client_cores,
    descendants,
    free_port,
    free_udp_tcp_port,
    interrupts_raise,
    options_answered,
    prepare_appliance,
)

SIPP_DIR = Path(__file__).resolve().with_name("sipp")
UAC_XML = SIPP_DIR / "uac_rtp.xml"
UAS_XML = SIPP_DIR / "uas_echo.xml"
CALLER_AUDIO = "caller.ulaw"  # the name uac_rtp.xml's rtp_stream plays, in sipp's working directory
RATES = (5, 10, 20)
CONCURRENT = (25, 50, 100)
PACKETS_PER_SECOND = 50  # PCMU, 20 ms
POLL_S = 0.5
WARMUP_CALLS = 3
START_TIMEOUT_S = 30.0

SCRIPT = """
const UAS = "sip:uas@127.0.0.1:UAS_PORT";
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  let out = null;
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.addEventListener(CallEvents.Failed, () => VoxEngine.terminate());
  const bridge = () => {
    if (out !== null) return;
    out = VoxEngine.callSIP(UAS);
    out.addEventListener(CallEvents.Connected, () => {
      VoxEngine.sendMediaBetween(call, out);
      Logger.write("bridged");
    });
    out.addEventListener(CallEvents.Failed, (f) => {
      Logger.write("outgoing failed " + f.code + " " + f.reason);
      call.hangup();
    });
    out.addEventListener(CallEvents.Disconnected, () => call.hangup());
  };
  call.addEventListener(CallEvents.Connected, () => {
    PROMPT
  });
  call.answer();
});
"""

PROMPTS = {
    "tone": """const tone = VoxEngine.createToneScriptPlayer("440@-19;1(1/0/1)");
    tone.addEventListener(PlayerEvents.PlaybackFinished, bridge);
    tone.sendMediaTo(call);""",
    "say": """call.addEventListener(CallEvents.PlaybackFinished, bridge);
    call.say("Connecting you now.", {voice: VoiceList.Amazon.en_US_Joanna});""",
}


# Measuring.


def tree_ticks(pid: int) -> int:
    """utime + stime of `pid`, its live descendants, and its reaped children (cutime + cstime), in clock ticks."""
    total = 0
    for n, each in enumerate(descendants(pid)):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if n == 0 else 0)
    return total


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Echo:
    """The UAS's media: an RTP echo on 127.0.0.1 that counts packets (a thread of this process)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.packets = 0
        self.peers: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtp-echo", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets += 1
            self.peers.add(peer)
            with contextlib.suppress(OSError):
                self.sock.sendto(data, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    key: str
    data: Path
    log: Path

    def health(self) -> dict[str, Any]:
        request = urllib.request.Request(f"http://{HOST}:{self.http_port}/platform_api/GetHealth", data=b"",
                                         headers={"Authorization": f"Bearer {self.key}"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            result: dict[str, Any] = json.loads(reply.read())["result"]
        return result

    def cpu_ticks(self) -> int:
        return tree_ticks(self.proc.pid)

    def session_logs(self) -> list[str]:
        folder = self.data / "logs" / "sessions"
        return [p.read_text(errors="replace") for p in sorted(folder.glob("*.log"))] if folder.is_dir() else []


def start_daemon(procs: Processes, work: Path, script: str) -> Daemon:
    data, vox, config = prepare_appliance(work)  # a trunk at 127.0.0.1, voxfiles with rule `.*` -> main
    (vox / "scenarios" / "src" / "main.voxengine.js").write_text(script)
    db = Database(data / "voxgate.db")
    try:
        _, key = ApiKeys(db).create("calls bench")
    finally:
        db.close()
    sip_port, http_port = free_udp_tcp_port(), free_port(socket.SOCK_STREAM)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(name, None)
    log = work / "appliance.log"
    proc = procs.start([str(APPLIANCE), "run", "--sim", "--config", str(config), "--data-dir", str(data),
                        "--sip", f"{HOST}:{sip_port}", "--http", f"{HOST}:{http_port}", "--voxfiles", str(vox)],
                       work, log, env=env, core=str(SERVER_CORE))
    daemon = Daemon(proc, sip_port, http_port, key, data, log)
    if not options_answered(sip_port, START_TIMEOUT_S) or proc.poll() is not None:
        raise RuntimeError(f"the appliance did not start:\n{log.read_text(errors='replace')[-2000:]}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            daemon.health()
            return daemon
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"GetHealth does not answer:\n{log.read_text(errors='replace')[-2000:]}") from None
            time.sleep(0.2)


# sipp.


@dataclass
class SippResult:
    exit_code: int
    wall: float
    stats: dict[str, str]
    setup_ms: list[float]  # INVITE to 200 OK, per call
    answered_at_ms: list[float]  # when each 200 OK came, from sipp's start
    errors: list[str]

    def count(self, name: str) -> int:
        return int(self.stats.get(name, "0") or 0)


def start_uas(procs: Processes, work: Path, echo: Echo) -> int:
    port = free_port()
    procs.start(["sipp", "-sf", str(UAS_XML), "-i", HOST, "-p", str(port), "-set", "echo_port", str(echo.port),
                 "-nostdin", "-bind_local", "-trace_err", "-error_file", str(work / "uas-errors.log")],
                work, work / "uas.log", core=client_cores())
    return port


def uac_args(target: str, rate: float, calls: int, limit: int, hold_s: float, work: Path, timeout: int) -> list[str]:
    return ["taskset", "-c", client_cores(), "sipp", "-sf", str(UAC_XML), target, "-s", "100", "-i", HOST,
            "-p", str(free_port()), "-mp", str(free_port()), "-r", f"{rate:g}", "-m", str(calls), "-l", str(limit),
            "-d", str(int(hold_s * 1000)), "-nostdin", "-timeout", str(timeout), "-timeout_error",
            "-trace_stat", "-stf", str(work / "stat.csv"), "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
            "-trace_err", "-error_file", str(work / "errors.log")]


def sipp_result(proc: subprocess.Popen[bytes], wall: float, work: Path) -> SippResult:
    stats: dict[str, str] = {}
    stat = work / "stat.csv"
    if stat.exists():
        lines = stat.read_text(errors="replace").splitlines()
        if len(lines) >= 2:
            stats = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    setup: list[float] = []
    answered: list[float] = []
    for rtt in work.glob("*_rtt.csv"):
        for line in rtt.read_text(errors="replace").splitlines()[1:]:
            parts = line.split(";")
            with contextlib.suppress(ValueError, IndexError):
                if parts[2].strip() == "1":
                    answered.append(float(parts[0]))
                    setup.append(float(parts[1]))
    errors_file = work / "errors.log"
    errors = errors_file.read_text(errors="replace").splitlines() if errors_file.exists() else []
    return SippResult(proc.returncode, wall, stats, setup, sorted(answered), errors)


def run_uac(procs: Processes, args: list[str], work: Path, watch: Watch) -> SippResult:
    """Run sipp to its end, polling the daemon meanwhile (`watch`)."""
    work.mkdir(exist_ok=True)
    caller_audio(work)
    t0 = time.monotonic()
    proc = procs.start(args, work, work / "sipp.log")
    while proc.poll() is None:
        watch.poll(time.monotonic() - t0)
        time.sleep(POLL_S)
    return sipp_result(proc, time.monotonic() - t0, work)


def caller_audio(work: Path) -> None:
    """One second of a 440 Hz tone in raw PCMU (G.711 mu-law) for rtp_stream to loop."""
    out = bytearray()
    for i in range(8000):
        sample = int(8000 * math.sin(2 * math.pi * 440 * i / 8000))
        sign = 0x80 if sample < 0 else 0
        magnitude = min(abs(sample), 32635) + 0x84
        exponent = max(0, magnitude.bit_length() - 8)
        mantissa = (magnitude >> (exponent + 3)) & 0x0F
        out.append(~(sign | (exponent << 4) | mantissa) & 0xFF)
    (work / CALLER_AUDIO).write_bytes(bytes(out))


@dataclass
class Watch:
    """GetHealth polled while sipp runs: the peaks, and what to snapshot at a moment."""

    daemon: Daemon
    peak_sessions: int = 0
    peak_legs: int = 0
    failures: int = 0
    samples: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def poll(self, at: float) -> dict[str, Any] | None:
        try:
            health = self.daemon.health()
        except OSError:
            self.failures += 1
            return None
        self.samples.append((at, health))
        self.peak_sessions = max(self.peak_sessions, int(health["sessions"]))
        self.peak_legs = max(self.peak_legs, int(health["session_calls"]))
        return health


# The two measurements.


@dataclass
class Tick:
    p50: float
    p99: float
    max: float
    max_before: bool  # the max was reached before the measured part
    overruns: int


def tick_figures(before: dict[str, Any], after: dict[str, Any]) -> Tick:
    b, a = before["media"], after["media"]
    return Tick(float(a["lateness_p50_ms"]), float(a["lateness_p99_ms"]), float(a["lateness_max_ms"]),
                float(a["lateness_max_ms"]) <= float(b["lateness_max_ms"]),
                int(a["overruns"]) + int(a["skipped"]) - int(b["overruns"]) - int(b["skipped"]))


@dataclass
class CpsRow:
    rate: float
    attempted: int
    completed: int
    failed: int
    achieved: float
    setup_p50: float
    setup_p95: float
    cpu_percent: float
    tick: Tick
    peak_sessions: int
    bridged: int
    exit_code: int


@dataclass
class HoldRow:
    calls: int
    up: int
    window_s: float
    cpu_percent: float
    ms_per_call_second: float
    tick: Tick | None
    relayed_pps: float
    failed: int
    attempted: int
    bridged: int
    exit_code: int

    @property
    def relayed_percent(self) -> float:
        return 100.0 * self.relayed_pps / (self.calls * PACKETS_PER_SECOND) if self.calls else math.nan


@dataclass
class LegMedia:
    """The media figures the daemon logs for each leg when it ends (`leg-N: media {...}`), summed over a row."""

    legs: int = 0
    received: int = 0
    sent: int = 0
    concealed: int = 0
    late: int = 0
    lossy: int = 0  # legs with lost_percent > 0
    max_lost: float = 0.0
    max_jitter: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, log: Path) -> LegMedia:
        found = cls()
        for line in log.read_text(errors="replace").splitlines():
            match = re.search(r": leg-\d+: media (\{.*\})$", line)
            if match is None:
                continue
            with contextlib.suppress(ValueError, SyntaxError):
                figures = ast.literal_eval(match.group(1))
                found.legs += 1
                found.received += int(figures.get("packets_received") or 0)
                found.sent += int(figures.get("packets_sent") or 0)
                found.concealed += int(figures.get("concealed") or 0)
                found.late += int(figures.get("late") or 0)
                lost = float(figures.get("lost_percent") or 0.0)
                found.lossy += lost > 0
                found.max_lost = max(found.max_lost, lost)
                found.max_jitter = max(found.max_jitter, float(figures.get("jitter_ms") or 0.0))
                for name, count in dict(figures.get("errors") or {}).items():
                    found.errors[str(name)] += int(count)
        return found

    def line(self, row: str) -> str:
        errors = ", ".join(f"{k} {v}" for k, v in self.errors.items()) or "none"
        return (f"  [{row}] {self.legs} legs (warm-up included): packets in {self.received} / out {self.sent}; "
                f"legs with loss {self.lossy} (max {self.max_lost:g} %); max jitter {self.max_jitter:g} ms; "
                f"concealed {self.concealed}; late {self.late}; errors {errors}")


@dataclass
class Findings:
    """What went wrong on the way, for the report after the tables."""

    daemon_lines: Counter[str] = field(default_factory=Counter)
    sipp_errors: Counter[str] = field(default_factory=Counter)
    session_lines: Counter[str] = field(default_factory=Counter)
    media: dict[str, LegMedia] = field(default_factory=dict)

    def read_daemon(self, daemon: Daemon, row: str) -> None:
        self.media[row] = LegMedia.read(daemon.log)
        for line in daemon.log.read_text(errors="replace").splitlines():
            if re.search(r"\b(WARNING|ERROR|CRITICAL|Traceback|Exception)\b", line):
                self.daemon_lines[f"[{row}] {normalize(line)}"] += 1
        for text in daemon.session_logs():
            for line in text.splitlines():
                message = line.split(" ", 2)[2] if line.count(" ") >= 2 else line
                if message != "bridged" and not message.startswith("engine: session ended: Normal termination"):
                    self.session_lines[f"[{row}] {normalize(message)}"] += 1

    def read_sipp(self, result: SippResult, row: str) -> None:
        for line in result.errors:
            if line.strip() and not line.startswith("sipp:"):
                self.sipp_errors[f"[{row}] {normalize(line)}"] += 1


def normalize(line: str) -> str:
    """A log line with its time stamps, numbers that count or name things, and addresses' ports blanked."""
    line = re.sub(r"^\S+ \S+ ", "", line) if re.match(r"^\d{4}-\d\d-\d\d", line) else line
    line = re.sub(r"\d{4}-\d\d-\d\d[ T][\d:.,]+", "<time>", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", line)
    return re.sub(r"\b\d{3,}\b", "<n>", line)[:300]


def bridged_count(daemon: Daemon) -> int:
    return sum("bridged" in text for text in daemon.session_logs())


def warm_up(procs: Processes, daemon: Daemon, work: Path) -> None:
    """A few calls first (the compiled scenario, the prompt's audio, imports): not measured."""
    target = f"{HOST}:{daemon.sip_port}"
    run_uac(procs, uac_args(target, WARMUP_CALLS, WARMUP_CALLS, WARMUP_CALLS, 2.0, work / "warmup", 30),
            work / "warmup", Watch(daemon))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and daemon.health()["sessions"]:
        time.sleep(0.2)


@contextlib.contextmanager
def warm_box(procs: Processes, work: Path, script: str) -> Iterator[tuple[Daemon, Echo]]:
    """A fresh daemon running `script` against the echoing UAS, warmed up; every process stopped after."""
    work.mkdir()
    echo = Echo()
    try:
        uas_port = start_uas(procs, work, echo)
        daemon = start_daemon(procs, work, script.replace("UAS_PORT", str(uas_port)))
        warm_up(procs, daemon, work)
        yield daemon, echo
    finally:
        procs.stop_all()
        echo.close()


def bench_cps(procs: Processes, work: Path, script: str, rate: float, seconds: float, hold: float,
              findings: Findings) -> CpsRow:
    with warm_box(procs, work, script) as (daemon, _):
        calls = max(1, round(rate * seconds))
        timeout = int(seconds + hold + 60)
        watch = Watch(daemon)
        before, cpu_before, t0 = daemon.health(), daemon.cpu_ticks(), time.monotonic()
        bridged_before = bridged_count(daemon)
        result = run_uac(procs, uac_args(f"{HOST}:{daemon.sip_port}", rate, calls, max(100, int(rate * (hold + 10))),
                                         hold, work / "run", timeout), work / "run", watch)
        cpu, wall, after = daemon.cpu_ticks() - cpu_before, time.monotonic() - t0, daemon.health()
        answered = result.answered_at_ms
        achieved = (len(answered) - 1) / ((answered[-1] - answered[0]) / 1e3) if len(answered) > 1 and \
            answered[-1] > answered[0] else math.nan
        completed = result.count("SuccessfulCall(C)")
        row = CpsRow(rate, result.count("TotalCallCreated") or calls, completed,
                     result.count("FailedCall(C)") or max(0, calls - completed), achieved,
                     statistics.median(result.setup_ms) if result.setup_ms else math.nan,
                     percentile(result.setup_ms, 0.95), 100.0 * cpu / CLK_TCK / wall, tick_figures(before, after),
                     watch.peak_sessions, bridged_count(daemon) - bridged_before, result.exit_code)
        findings.read_sipp(result, f"{rate:g} cps")
        procs.stop_all()
        findings.read_daemon(daemon, f"{rate:g} cps")
        return row


def bench_hold(procs: Processes, work: Path, script: str, calls: int, hold: float, ramp: float,
               findings: Findings) -> HoldRow:
    with warm_box(procs, work, script) as (daemon, echo):
        bridged_before = bridged_count(daemon)
        window = HoldWindow(daemon, echo, calls, hold)
        result = run_uac(procs, uac_args(f"{HOST}:{daemon.sip_port}", ramp, calls, calls, hold, work / "run",
                                         int(hold + calls / ramp + 60)), work / "run", window)
        findings.read_sipp(result, f"{calls} held")
        bridged = bridged_count(daemon) - bridged_before
        procs.stop_all()
        findings.read_daemon(daemon, f"{calls} held")
        return window.row(result, bridged)


class HoldWindow(Watch):
    """The steady part: from the first poll with all calls bridged (two legs each) until a second before the
    first call's hold ends (sipp started it about first; it hangs up `hold` s after its 200 OK)."""

    def __init__(self, daemon: Daemon, echo: Echo, calls: int, hold: float) -> None:
        super().__init__(daemon)
        self.echo, self.calls, self.hold = echo, calls, hold
        self.start: tuple[float, dict[str, Any], int, int] | None = None  # at, health, cpu ticks, echo packets
        self.end: tuple[float, dict[str, Any], int, int] | None = None
        self.fewest_up: int | None = None

    def poll(self, at: float) -> dict[str, Any] | None:
        if self.end is not None:
            return super().poll(at)
        cpu, packets = self.daemon.cpu_ticks(), self.echo.packets
        health = super().poll(at)
        if health is None:
            return None
        up = int(health["session_calls"]) // 2
        if self.start is None:
            if up >= self.calls:
                self.start = (at, health, cpu, packets)
                self.fewest_up = up
        elif at >= self.hold - 1.0:
            self.end = (at, health, cpu, packets)
        else:
            self.fewest_up = min(self.fewest_up if self.fewest_up is not None else up, up)
        return health

    def row(self, result: SippResult, bridged: int) -> HoldRow:
        attempted = result.count("TotalCallCreated")
        failed = result.count("FailedCall(C)") or max(0, self.calls - result.count("SuccessfulCall(C)"))
        if self.start is None or self.end is None:
            up = self.peak_legs // 2
            return HoldRow(self.calls, up, 0.0, math.nan, math.nan, None, math.nan, failed, attempted, bridged,
                           result.exit_code)
        (t0, h0, c0, p0), (t1, h1, c1, p1) = self.start, self.end
        seconds = t1 - t0
        cpu_s = (c1 - c0) / CLK_TCK
        up = self.fewest_up if self.fewest_up is not None else self.calls
        return HoldRow(self.calls, up, seconds, 100.0 * cpu_s / seconds if seconds > 0 else math.nan,
                       cpu_s * 1e3 / seconds / up if seconds > 0 and up else math.nan, tick_figures(h0, h1),
                       (p1 - p0) / seconds if seconds > 0 else math.nan, failed, attempted, bridged, result.exit_code)


# Output.


CPS_HEAD = (f"{'cps asked':>9} {'tried':>6} {'done':>6} {'failed':>6} {'bridged':>7} {'cps got':>7} "
            f"{'setup p50':>9} {'p95 ms':>7} {'CPU':>6} {'late p50':>8} {'p99 ms':>7} {'max ms':>8} "
            f"{'overrun':>7} {'sessions':>8}")
HOLD_HEAD = (f"{'calls':>5} {'up':>5} {'window':>6} {'CPU':>6} {'ms/call/s':>9} {'late p50':>8} {'p99 ms':>7} "
             f"{'overrun':>7} {'relayed/s':>9} {'of N×50':>7} {'bridged':>7} {'failed':>6}")


def fmt(value: float, width: int, digits: int = 1) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.{digits}f}"


def cps_line(row: CpsRow) -> str:
    t = row.tick
    maximum = f"{t.max:.1f}{'*' if t.max_before else ''}"
    note = "" if row.exit_code == 0 else f"  (sipp exit {row.exit_code})"
    return (f"{row.rate:>9g} {row.attempted:>6} {row.completed:>6} {row.failed:>6} {row.bridged:>7} "
            f"{fmt(row.achieved, 7, 2)} {fmt(row.setup_p50, 9, 0)} {fmt(row.setup_p95, 7, 0)} "
            f"{fmt(row.cpu_percent, 5)}% {t.p50:>8.3f} {t.p99:>7.3f} {maximum:>8} {t.overruns:>7} "
            f"{row.peak_sessions:>8}{note}")


def hold_line(row: HoldRow) -> str:
    note = "" if row.exit_code == 0 else f"  (sipp exit {row.exit_code})"
    if row.tick is None:
        return (f"{row.calls:>5} {row.up:>5} {'-':>6} no steady window: never all {row.calls} calls bridged at once; "
                f"attempted {row.attempted}, bridged {row.bridged}, failed {row.failed}{note}")
    t = row.tick
    return (f"{row.calls:>5} {row.up:>5} {row.window_s:>5.1f}s {fmt(row.cpu_percent, 5)}% "
            f"{fmt(row.ms_per_call_second, 9, 3)} {t.p50:>8.3f} {t.p99:>7.3f} {t.overruns:>7} "
            f"{fmt(row.relayed_pps, 9, 0)} {fmt(row.relayed_percent, 6)}% {row.bridged:>7} {row.failed:>6}{note}")


def report(findings: Findings) -> None:
    print("per-leg media the daemon logged at each hangup, summed per row:")
    for row, media in findings.media.items():
        print(media.line(row))
    for title, lines in (("daemon warnings/errors (log lines, count)", findings.daemon_lines),
                         ("session log lines other than 'bridged' and normal termination", findings.session_lines),
                         ("sipp errors (its -trace_err file)", findings.sipp_errors)):
        if not lines:
            print(f"{title}: none")
            continue
        print(f"{title}:")
        for line, count in lines.most_common(25):
            print(f"  {count:>5} x {line}")
        if len(lines) > 25:
            print(f"  ... {len(lines) - 25} more distinct lines")


def numbers(text: str, kind: type[int] | type[float]) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one rate (5 cps) for 10 s, and 10 concurrent calls held 10 s")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="calls per second, comma-separated")
    parser.add_argument("--cps-seconds", type=float, default=30.0, help="how long each rate runs")
    parser.add_argument("--cps-hold", type=float, default=3.0, help="how long each call is held in the cps rows")
    parser.add_argument("--concurrent", default=",".join(map(str, CONCURRENT)),
                        help="concurrent calls, comma-separated")
    parser.add_argument("--hold", type=float, default=30.0, help="how long each concurrent call is held (s)")
    parser.add_argument("--ramp-rate", type=float, default=10.0,
                        help="calls per second bringing the concurrent calls up")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="tone", help="the prompt before the bridge")
    parser.add_argument("--only", choices=("cps", "concurrent"), default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the work files (logs, sipp CSVs) in DIR")
    args = parser.parse_args()
    rates: list[float] = numbers(args.rates, float)
    concurrent: list[int] = numbers(args.concurrent, int)
    cps_seconds, cps_hold, hold = args.cps_seconds, args.cps_hold, args.hold
    if args.quick:
        rates, cps_seconds, concurrent, hold = rates[:1], 10.0, [10], 10.0
    if args.only == "cps":
        concurrent = []
    elif args.only == "concurrent":
        rates = []
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(c) for c in client_cores().split(",")})
    script = SCRIPT.replace("PROMPT", PROMPTS[args.prompt])
    print(f"appliance pinned to core {SERVER_CORE}; sipp and the RTP echo on core(s) {client_cores()}; prompt: "
          f"{args.prompt}; CPU = the daemon's utime+stime in % of one core; a fresh daemon per row")
    procs = Processes()
    findings = Findings()
    cps_rows: list[CpsRow] = []
    hold_rows: list[HoldRow] = []
    with interrupts_raise(), tempfile.TemporaryDirectory(prefix="calls-bench-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        try:
            if rates:
                print(f"\n1. calls per second sustained: {cps_seconds:g} s per rate, calls held {cps_hold:g} s")
                print(CPS_HEAD, flush=True)
            for rate in rates:
                cps_rows.append(bench_cps(procs, root / f"cps-{rate:g}", script, rate, cps_seconds, cps_hold,
                                          findings))
                print(cps_line(cps_rows[-1]), flush=True)
            if concurrent:
                print(f"\n2. concurrent calls with media: brought up at {args.ramp_rate:g} cps, held {hold:g} s; "
                      "figures over the steady window")
                print(HOLD_HEAD, flush=True)
            for calls in concurrent:
                hold_rows.append(bench_hold(procs, root / f"hold-{calls}", script, calls, hold, args.ramp_rate,
                                            findings))
                print(hold_line(hold_rows[-1]), flush=True)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
        finally:
            procs.stop_all()
    print()
    report(findings)


if __name__ == "__main__":
    main()
