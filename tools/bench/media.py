"""Media relay on one core: the appliance's MediaPlane against a userspace rtpengine, 10/100/300 PCMU calls.

For each call count, each relay in turn relays C bridged PCMU calls (two endpoints per call, 50
packets/s each way) between the RTP load generator (tools/bench/rtp_load.py, a subprocess pinned to
core 1) and itself, pinned to core 0:
- appliance: tools/bench/media_relay.py in a subprocess (taskset -c 0, OPENBLAS_NUM_THREADS=1,
  uvloop, the real clock): a MediaPlane with two RtpEndpoints per call bridged both ways, every
  packet decoded, routed through the mixer's matrix and re-encoded each 20 ms tick. It measures
  itself over a steady-state window (WARMUP_S after the load starts, until TAIL_S before it stops):
  its own CPU (utime + stime), the tick's lateness and overruns, packets in and out, and packets
  *lost inside the appliance* (received and never sent on; defined in media_relay.py);
- rtpengine: tools/bench/media_rtpengine.py's `bench` (one worker thread), its CPU read from /proc
  over the same window.
Columns: packets relayed per second (appliance: sent by its endpoints in the window; rtpengine:
received by the generator per second of sending), the relay's CPU in % of a core and per relayed
packet, CPU ms per call per second, tick lateness p50/p99/max and overruns (appliance only), lost
inside the appliance, lost end to end (the generator's count after its own warm-up: sent and never
received intact), the generator's CPU. Then the appliance/rtpengine ratio of CPU per call for each
call count and whether the targets hold (TARGET). Everything runs on 127.0.0.1; every process is
stopped and the temp dir removed on exit, also on Ctrl-C. Needs rtpengine (Debian rtpengine-daemon).

    .venv/bin/python tools/bench/media.py [--seconds 20] [--calls 10,100,300] [--only appliance|rtpengine]
                                          [--profile]   # cProfile the appliance's window, top 30 to stderr
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `tools.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench import media_rtpengine
from tools.bench.rtp_load import HOST, LoadProcess, LoadResult
from tools.bench.sip_setup import interrupts_raise

CALLS = media_rtpengine.CALLS
SERVER_CORE = media_rtpengine.SERVER_CORE
LOAD_CORE = media_rtpengine.LOAD_CORE
RELAY = Path(__file__).resolve().with_name("media_relay.py")
TARGET_CALLS = 300
TARGET_P99_MS = 2.0
TARGET_CPU_RATIO = 2.0
TARGET = (f"{TARGET_CALLS} bridged calls with p99 tick lateness under {TARGET_P99_MS:g} ms and no packet lost "
          f"inside the appliance; CPU per call within {TARGET_CPU_RATIO:g}x of rtpengine's")
STOP_TIMEOUT_S = 10.0


@dataclass
class Row:
    calls: int
    relay: str  # "appliance" or "rtpengine"
    pps: float  # packets relayed per second
    cpu_seconds: float  # the relay's, over the window
    window_seconds: float
    load: LoadResult
    tick: dict[str, Any] | None = None  # the appliance's window figures (media_relay.py's JSON)

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.window_seconds

    @property
    def us_per_packet(self) -> float:
        return self.cpu_seconds / self.window_seconds * 1e6 / self.pps if self.pps else math.nan

    @property
    def ms_per_call_second(self) -> float:
        return self.cpu_seconds * 1e3 / self.window_seconds / self.calls


HEAD = (f"{'calls':>5} {'relay':<9} {'pkt/s':>7} {'CPU':>6} {'µs/pkt':>7} {'ms/call/s':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'overrun':>7} {'lost in':>7} {'lost e2e':>8} {'gen CPU':>7}")


def line(row: Row) -> str:
    tick = row.tick
    if tick is not None:
        appliance = (f"{tick['lateness_p50_ms']:>7.3f} {tick['lateness_p99_ms']:>7.3f} {tick['max_lateness_ms']:>7.3f} "
                     f"{tick['overruns'] + tick['skipped']:>7} {tick['lost_inside']:>7}")
    else:
        appliance = f"{'-':>7} {'-':>7} {'-':>7} {'-':>7} {'-':>7}"
    return (f"{row.calls:>5} {row.relay:<9} {row.pps:>7.0f} {row.cpu_percent:>5.1f}% {row.us_per_packet:>7.2f} "
            f"{row.ms_per_call_second:>9.3f} {appliance} {row.load.lost:>8} {row.load.cpu_percent:>6.0f}%")


class Relay:
    """media_relay.py pinned to SERVER_CORE; `close()` ends it (quit, then kill) and is safe twice."""

    def __init__(self, calls: int, peers_file: Path, warmup: float, window: float, profile: bool) -> None:
        args = ["taskset", "-c", str(SERVER_CORE), sys.executable, str(RELAY), "--peers", str(peers_file),
                "--calls", str(calls), "--warmup", str(warmup), "--window", str(window)]
        if profile:
            args.append("--profile")
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def _line(self, what: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        if not text:
            raise RuntimeError(f"media_relay exited before printing {what} ({self.proc.wait()})")
        data: dict[str, Any] = json.loads(text)
        return data

    def ports(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in self._line("its ports")["ports"]]

    def tell(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        return self._line("its result")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.tell("quit")
                self.proc.wait(STOP_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def bench_appliance(calls: int, seconds: float, work: Path, profile: bool) -> Row:
    work.mkdir()
    warmup, length = media_rtpengine.window(seconds)
    load = LoadProcess(calls, seconds, work, cpu=LOAD_CORE)
    relay: Relay | None = None
    try:
        peers = work / "peers.json"
        peers.write_text(json.dumps(load.endpoints()))
        relay = Relay(calls, peers, warmup, length, profile)
        ports = relay.ports()
        load.set_targets([((HOST, a), (HOST, b)) for a, b in ports])
        relay.tell("go")
        tick = relay.result()
        result = load.result(timeout=seconds + 60)
        return Row(calls, "appliance", tick["packets_sent"] / tick["seconds"], tick["cpu_seconds"], tick["seconds"],
                   result, tick)
    finally:
        if relay is not None:
            relay.close()
        load.close()


def bench_rtpengine(calls: int, seconds: float, work: Path) -> Row:
    row = media_rtpengine.bench(calls, seconds, work)
    return Row(calls, "rtpengine", row.load.received / row.load.seconds, row.window_cpu_seconds,
               row.window_seconds, row.load)


def summary(rows: list[Row]) -> list[str]:
    by = {(row.calls, row.relay): row for row in rows}
    out: list[str] = []
    ratios: dict[int, float] = {}
    for calls in sorted({row.calls for row in rows}):
        ours, theirs = by.get((calls, "appliance")), by.get((calls, "rtpengine"))
        if ours is not None and theirs is not None:
            ratios[calls] = ours.ms_per_call_second / theirs.ms_per_call_second
    if ratios:
        out.append("CPU per call, appliance / rtpengine: "
                   + ", ".join(f"{calls} calls {ratio:.2f}x" for calls, ratio in ratios.items()))
    target = by.get((TARGET_CALLS, "appliance"))
    if target is None or target.tick is None or TARGET_CALLS not in ratios:
        out.append(f"target ({TARGET}): not measured (needs both relays at {TARGET_CALLS} calls)")
        return out
    p99, lost = target.tick["lateness_p99_ms"], target.tick["lost_inside"]
    checks = [(f"p99 tick lateness {p99:.3f} ms < {TARGET_P99_MS:g} ms", p99 < TARGET_P99_MS),
              (f"lost inside the appliance {lost} = 0", lost == 0),
              (f"CPU per call {ratios[TARGET_CALLS]:.2f}x <= {TARGET_CPU_RATIO:g}x", ratios[TARGET_CALLS]
               <= TARGET_CPU_RATIO)]
    verdict = "MET" if all(ok for _, ok in checks) else "NOT MET"
    out.append(f"target ({TARGET}): {verdict} at {TARGET_CALLS} calls: "
               + "; ".join(f"{text} {'ok' if ok else 'FAILS'}" for text, ok in checks))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per row")
    parser.add_argument("--calls", default=",".join(map(str, CALLS)), help="comma-separated call counts")
    parser.add_argument("--only", choices=("appliance", "rtpengine"), default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the appliance's window (top 30 to stderr)")
    args = parser.parse_args()
    counts = [int(c) for c in args.calls.split(",")]
    relays = [args.only] if args.only else ["appliance", "rtpengine"]
    warmup, length = media_rtpengine.window(args.seconds)
    print(f"relay pinned to core {SERVER_CORE}, RTP load on core {LOAD_CORE}; PCMU 20 ms, {args.seconds:g} s of "
          f"load per row, measured over {length:g} s from {warmup:g} s in; CPU = the relay's utime+stime")
    print(HEAD, flush=True)
    rows: list[Row] = []
    with interrupts_raise(), tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        try:
            for calls in counts:
                for relay in relays:
                    work = Path(tmp) / f"{relay}-{calls}"
                    if relay == "appliance":
                        rows.append(bench_appliance(calls, args.seconds, work, args.profile))
                    else:
                        rows.append(bench_rtpengine(calls, args.seconds, work))
                    print(line(rows[-1]), flush=True)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
    for row in rows:
        if row.tick is not None:
            t = row.tick
            print(f"appliance {row.calls} calls: {t['ticks']} ticks, busy {t['busy_ms_per_tick']:.3f} ms/tick, "
                  f"skipped {t['skipped']}, waited for the CPU "
                  f"{t['cpu_wait_seconds']:.2f} s, in {t['packets_received']} / out {t['packets_sent']} packets; "
                  f"lost inside {t['lost_inside']} = kernel drops {t['kernel_drops']} + errors {t['errors']} + "
                  f"unplayed {t['unplayed']} (late {t['late']}, duplicates {t['duplicates']}, shrunk {t['shrunk']}); "
                  f"concealed ticks {t['concealed']}; generator: crossed {row.load.crossed}, latency p50/p99 "
                  f"{row.load.latency_p50_ms:.2f}/{row.load.latency_p99_ms:.2f} ms")
    for text in summary(rows):
        print(text)


if __name__ == "__main__":
    main()
