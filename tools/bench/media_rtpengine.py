"""CPU per relayed RTP packet and per call of a userspace rtpengine, for 10, 100 and 300 PCMU calls.

For each call count: rtpengine (userspace, one worker thread) starts pinned to core 0; the RTP load
(tools/bench/rtp_load.py, in a subprocess pinned to core 1) opens two endpoints per call; every
call is bridged through rtpengine over ng (offer with A's SDP, answer with B's); then every
endpoint sends 50 packets/s for --seconds and checks what it receives (lost after a 1 s warm-up,
crossed calls, one-way latency). rtpengine's CPU is its utime + stime (all threads, from /proc) over
the load, drain included. Columns: packets relayed per second (received by the endpoints), its CPU
in % of a core, CPU µs per relayed packet (and "net": less rtpengine's idle CPU with the same
calls set up and no RTP, measured for IDLE_S first), CPU ms per call per second, lost, crossed, latency
p50/p99 and the generator's own CPU (it must stay well under 100 % for the figures to hold). Then
the calls are deleted and rtpengine stopped. Everything is on 127.0.0.1; nothing is left running.
Reference (DESIGN 4a): about 9-10 µs per packet. Needs rtpengine (Debian rtpengine-daemon).

    .venv/bin/python tools/bench/media_rtpengine.py [--seconds 20] [--calls 10,100,300]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `tools.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench.rtp_load import LoadProcess, LoadResult
from tools.bench.rtpengine_ng import NgClient, NgError, Rtpengine, bridge
from tools.bench.sip_setup import interrupts_raise

CALLS = (10, 100, 300)
SERVER_CORE = 0
LOAD_CORE = 1
IDLE_S = 3.0  # rtpengine's CPU with the calls set up and no RTP is measured this long first
WARMUP_S = 2.0  # the steady-state window starts this long after the load starts...
TAIL_S = 0.5  # ...and ends this long before it stops


@dataclass
class Row:
    calls: int
    load: LoadResult
    cpu_seconds: float  # rtpengine's, over the load
    idle_cpu_per_s: float  # rtpengine's with the calls set up but no RTP, per second
    threads: int
    window_cpu_seconds: float = 0.0  # rtpengine's, over the steady-state window (see `window`)
    window_seconds: float = 0.0

    @property
    def pps(self) -> float:
        return self.load.received / self.load.wall_seconds

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.load.wall_seconds

    @property
    def us_per_packet(self) -> float:
        return self.cpu_seconds * 1e6 / max(1, self.load.received)

    @property
    def net_us_per_packet(self) -> float:
        """Less the idle cost (timers, pollers) the calls have without any RTP."""
        net = self.cpu_seconds - self.idle_cpu_per_s * self.load.wall_seconds
        return net * 1e6 / max(1, self.load.received)

    @property
    def ms_per_call_second(self) -> float:
        return self.cpu_seconds * 1e3 / self.load.wall_seconds / self.calls


HEAD = (f"{'calls':>5} {'relayed/s':>9} {'rtpe CPU':>8} {'µs/pkt':>7} {'net µs':>7} {'ms/call/s':>9} "
        f"{'lost':>6} {'crossed':>7} {'p50 ms':>7} {'p99 ms':>7} {'gen CPU':>7}")


def line(row: Row) -> str:
    return (f"{row.calls:>5} {row.pps:>9.0f} {row.cpu_percent:>7.1f}% {row.us_per_packet:>7.2f} "
            f"{row.net_us_per_packet:>7.2f} {row.ms_per_call_second:>9.3f} {row.load.lost:>6} {row.load.crossed:>7} "
            f"{row.load.latency_p50_ms:>7.3f} "
            f"{row.load.latency_p99_ms:>7.3f} {row.load.cpu_percent:>6.0f}%")


def window(seconds: float) -> tuple[float, float]:
    """The steady-state part of a load of `seconds`: (start, length) from the load's start."""
    return WARMUP_S, max(0.0, seconds - WARMUP_S - TAIL_S)


def bench(calls: int, seconds: float, work: Path) -> Row:
    """One row: rtpengine relaying `calls` calls for `seconds` (its CPU over the load and over `window`)."""
    work.mkdir()
    rtpe = Rtpengine(core=SERVER_CORE, threads=1, workdir=work)
    load: LoadProcess | None = None
    ng = NgClient(rtpe.ng_addr)
    call_ids: list[str] = []
    try:
        load = LoadProcess(calls, seconds, work, cpu=LOAD_CORE)
        targets = []
        for i, (a, b) in enumerate(load.endpoints()):
            call_ids.append(f"bench-{calls}-{i}")
            targets.append(bridge(ng, call_ids[-1], a, b))
        time.sleep(0.5)  # let set-up work settle before measuring
        idle_before, t0 = rtpe.cpu_seconds(), time.monotonic()
        time.sleep(IDLE_S)
        idle = (rtpe.cpu_seconds() - idle_before) / (time.monotonic() - t0)
        before = rtpe.cpu_seconds()
        load.set_targets(targets)
        go = time.monotonic()
        start, length = window(seconds)
        time.sleep(max(0.0, go + start - time.monotonic()))
        window_before, window_at = rtpe.cpu_seconds(), time.monotonic()
        time.sleep(max(0.0, window_at + length - time.monotonic()))
        window_cpu, window_s = rtpe.cpu_seconds() - window_before, time.monotonic() - window_at
        result = load.result(timeout=seconds + 60)
        cpu = rtpe.cpu_seconds() - before
        return Row(calls, result, cpu, idle, rtpe.threads(), window_cpu, window_s)
    finally:
        try:
            for call_id in call_ids:
                with contextlib.suppress(NgError):
                    ng.delete(call_id)
        finally:
            ng.close()
            if load is not None:
                load.close()
            rtpe.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration per call count")
    parser.add_argument("--calls", default=",".join(map(str, CALLS)), help="comma-separated call counts")
    args = parser.parse_args()
    counts = [int(c) for c in args.calls.split(",")]
    print(f"rtpengine (userspace, --num-threads=1) pinned to core {SERVER_CORE}; RTP load on core {LOAD_CORE}; "
          f"PCMU 20 ms, {args.seconds:g} s per step; CPU = rtpengine utime+stime over the load")
    print(HEAD, flush=True)
    rows: list[Row] = []
    with interrupts_raise(), tempfile.TemporaryDirectory(prefix="media-rtpengine-") as tmp:
        try:
            for calls in counts:
                rows.append(bench(calls, args.seconds, Path(tmp) / str(calls)))
                print(line(rows[-1]), flush=True)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
    if rows:
        print(f"rtpengine threads: {rows[-1].threads}; latency includes the generator's own send/receive "
              f"scheduling (run rtp_load.py --direct for that baseline)")


if __name__ == "__main__":
    main()
