"""RTP load generator and sink: C bridged PCMU calls, two endpoints each, real UDP on 127.0.0.1.

Endpoint A and B of every call are UDP sockets on 127.0.0.1 (ports from the OS). Each sends PCMU
RTP (version 2, PT 0, 160-byte payload, own SSRC, seq/timestamp +1/+160 per packet) every 20 ms to
its target (the relay's port for that leg) and receives what the relay sends it, which must be the
other endpoint's audio. The first 8 payload bytes are a tag: the send time (ns since the run's start,
in 1.024 µs units), the call index and the side, 7 bits per byte with the top bit set (a relay that
decodes and re-encodes G.711 maps µ-law byte 0x7F to 0xFF, and only that byte: the tag survives it),
then 152 bytes of a 1 kHz µ-law tone; the sink counts lost packets per direction, crossed
packets (audio of another call or of the wrong side) and one-way latency. Losses and latency count
after a warm-up of WARMUP_S only. All sends of a 20 ms slot are spread over SUBSLOTS sub-slots;
receives are level-triggered epoll, one recv per readiness. The generator's own CPU is reported.

As a module:

    load = Load(calls); load.endpoints(); load.set_targets(targets); result = load.run(20.0)
    # or, on another core, in a subprocess: LoadProcess(calls, seconds, cpu=1)

As a subprocess (prints {"endpoints": ...} as its first line, waits for FILE to appear holding the
targets as JSON [[[hostA, portA], [hostB, portB]], ...], runs, then prints the result as one JSON line):

    .venv/bin/python tools/bench/rtp_load.py --calls 300 --seconds 20 --targets-json FILE --pin-cpu 1

Self-test without a relay (A and B send to each other directly; shows what the generator sustains):

    .venv/bin/python tools/bench/rtp_load.py --calls 300 --seconds 10 --direct --pin-cpu 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
PTIME_NS = 20_000_000
SAMPLES = 160  # 20 ms of 8 kHz PCMU
SUBSLOTS = 4  # the sends of one 20 ms slot are spread over this many sub-slots
WARMUP_S = 1.0  # losses and latency are counted for packets sent after this
DRAIN_S = 0.3  # after the last send, keep receiving this long (stops earlier when quiet for DRAIN_QUIET_S)
DRAIN_QUIET_S = 0.1
RCVBUF = 256 * 1024
TARGETS_WAIT_S = 120.0
MAX_CALLS = 5000  # two sockets per call: stay well under the usual fd limit
# RTP header (V=2, PT 0) then the bench's tag (see `_tag`): send time, call index, side (0 = A, 1 = B).
HEADER = struct.Struct("!BBHIIQ")
TAG = struct.Struct("!Q")
TAG_HIGH = 0x8080808080808080  # the top bit of every tag byte
TAG_LOW = 0x7F7F7F7F7F7F7F7F
TAG_TIME_SHIFT = 10  # send time resolution: 1,024 ns; 35 bits of it (9.7 hours)
Addr = tuple[str, int]


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample to µ-law (G.711)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone_payload() -> bytes:
    """160 bytes of a 1 kHz tone at -6 dBFS in µ-law (8 samples per cycle)."""
    return bytes(_ulaw(round(16384 * math.sin(2 * math.pi * n / 8))) for n in range(SAMPLES))


def _spread5(t: int) -> int:
    """35 bits, 7 to a byte (low bytes first)."""
    return ((t & 0x7F) | ((t << 1) & 0x7F00) | ((t << 2) & 0x7F0000) | ((t << 3) & 0x7F000000)
            | ((t << 4) & 0x7F00000000))


def _gather5(u: int) -> int:
    return ((u & 0x7F) | ((u >> 1) & 0x3F80) | ((u >> 2) & 0x1FC000) | ((u >> 3) & 0xFE00000)
            | ((u >> 4) & 0x7F0000000))


def _leg_code(call: int, side: int) -> int:
    """Call and side in the tag's two low bytes (14 bits: calls up to 8191)."""
    x = call << 1 | side
    return (x & 0x7F) | ((x << 1) & 0x7F00)


def _tag(time_units: int, leg_code: int) -> int:
    """The 8-byte tag: bytes 0-1 call and side, 2-6 send time, 7 nothing; every byte has its top bit set."""
    return TAG_HIGH | leg_code | _spread5(time_units) << 16


def _untag(tag: int) -> tuple[int, int] | None:
    """(send time units, leg code) of a tag, None if it is not one."""
    if tag & TAG_HIGH != TAG_HIGH:
        return None
    u = tag & TAG_LOW
    return _gather5(u >> 16), (u & 0x7F7F)


@dataclass
class Leg:
    """One endpoint: its socket and where it sends."""

    sock: socket.socket
    target: Addr
    call: int
    side: int  # 0 = A, 1 = B
    ssrc: int
    ts_base: int


@dataclass
class LoadResult:
    calls: int
    seconds: float  # wall time of the sending phase
    sent: int  # every packet sent, warm-up included
    received: int  # every packet received, warm-up and crossed included
    sent_a_to_b: int  # measured (after warm-up) from here on
    sent_b_to_a: int
    lost_a_to_b: int
    lost_b_to_a: int
    crossed: int  # packets an endpoint received that were not its peer's audio (whole run)
    malformed: int
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    max_late_ms: float  # how far behind schedule the sender ran at worst
    cpu_seconds: float  # the generator's own utime + stime
    wall_seconds: float  # the whole run, drain included

    @property
    def lost(self) -> int:
        return self.lost_a_to_b + self.lost_b_to_a

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        return cls(**json.loads(text))


def _percentile(ordered: list[int], fraction: float) -> float:
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


class Load:
    """2 * calls UDP endpoints on 127.0.0.1 that talk PCMU through a relay (or directly)."""

    def __init__(self, calls: int) -> None:
        if not 1 <= calls <= MAX_CALLS:
            raise ValueError(f"calls must be 1..{MAX_CALLS}, not {calls}")
        self.calls = calls
        self.legs: list[Leg] = []
        rng = random.Random()
        try:
            for call in range(calls):
                for side in (0, 1):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    self.legs.append(Leg(sock, (HOST, 0), call, side, rng.getrandbits(32), rng.getrandbits(32)))
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                    sock.bind((HOST, 0))
                    sock.setblocking(False)
        except OSError:
            self.close()
            raise

    def endpoints(self) -> list[tuple[Addr, Addr]]:
        """(A's local address, B's local address) per call."""
        addrs = [(str(h), int(p)) for h, p in (leg.sock.getsockname() for leg in self.legs)]
        return [(addrs[2 * i], addrs[2 * i + 1]) for i in range(self.calls)]

    def set_targets(self, targets: list[tuple[Addr, Addr]]) -> None:
        """Where A and B of each call send: (A's target, B's target) per call."""
        if len(targets) != self.calls:
            raise ValueError(f"{len(targets)} targets for {self.calls} calls")
        for i, (a, b) in enumerate(targets):
            self.legs[2 * i].target = (str(a[0]), int(a[1]))
            self.legs[2 * i + 1].target = (str(b[0]), int(b[1]))

    def direct(self) -> None:
        """No relay: A sends to B and B to A (measures the generator alone)."""
        self.set_targets([(b, a) for a, b in self.endpoints()])

    def close(self) -> None:
        for leg in self.legs:
            leg.sock.close()

    def run(self, seconds: float) -> LoadResult:
        if any(leg.target[1] == 0 for leg in self.legs):
            raise ValueError("set_targets() first")
        buf = bytearray(HEADER.size) + bytearray(tone_payload()[: SAMPLES - TAG.size])  # 160-byte payload
        pack_into, unpack_from = HEADER.pack_into, TAG.unpack_from
        monotonic_ns = time.monotonic_ns
        # The sends of each sub-slot: (sendto, target, leg code, side, ssrc, ts_base).
        groups = [[(leg.sock.sendto, leg.target, _leg_code(leg.call, leg.side), leg.side, leg.ssrc, leg.ts_base)
                   for n, leg in enumerate(self.legs) if n % SUBSLOTS == g] for g in range(SUBSLOTS)]
        per_side = [[sum(1 for x in group if x[3] == side) for side in (0, 1)] for group in groups]
        # What each socket must receive: the leg code of (call, other side), and that side.
        expect = {leg.sock.fileno(): (leg.sock.recv, _leg_code(leg.call, 1 - leg.side), 1 - leg.side)
                  for leg in self.legs}
        poller = select.epoll()
        for fd in expect:
            poller.register(fd, select.EPOLLIN)
        sent = received = crossed = malformed = 0
        sent_dir = [0, 0]  # measured sends, by the sender's side
        recv_dir = [0, 0]
        latencies: list[int] = []
        max_late = 0
        period = PTIME_NS // SUBSLOTS
        cpu0 = time.process_time()
        start = monotonic_ns()
        warm = start + int(WARMUP_S * 1e9)
        warm_units = int(WARMUP_S * 1e9) >> TAG_TIME_SHIFT
        end = start + int(seconds * 1e9)
        drain_end = end + int(DRAIN_S * 1e9)
        quiet_end = drain_end
        k = 0
        next_send = start

        def receive(events: list[tuple[int, int]]) -> None:
            nonlocal received, crossed, malformed
            for fd, _ in events:
                recv, code, side = expect[fd]
                try:
                    data = recv(2048)
                except BlockingIOError:
                    continue
                now = monotonic_ns()
                received += 1
                if len(data) < HEADER.size or data[0] != 0x80 or data[1] & 0x7F:
                    malformed += 1
                    continue
                tag = _untag(unpack_from(data, 12)[0])
                if tag is None or tag[1] != code:
                    crossed += 1
                elif tag[0] >= warm_units:
                    recv_dir[side] += 1
                    latencies.append(now - start - (tag[0] << TAG_TIME_SHIFT))

        try:
            while True:
                now = monotonic_ns()
                if now >= next_send:
                    if next_send >= end:
                        break
                    max_late = max(max_late, now - next_send)
                    slot, g = divmod(k, SUBSLOTS)
                    seq, ts = slot & 0xFFFF, slot * SAMPLES
                    for sendto, target, code, _, ssrc, ts_base in groups[g]:
                        units = (monotonic_ns() - start) >> TAG_TIME_SHIFT
                        pack_into(buf, 0, 0x80, 0, seq, (ts_base + ts) & 0xFFFFFFFF, ssrc, _tag(units, code))
                        with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                            sendto(buf, target)
                    sent += len(groups[g])
                    if next_send >= warm:
                        sent_dir[0] += per_side[g][0]
                        sent_dir[1] += per_side[g][1]
                    k += 1
                    next_send = start + k * period
                    continue
                receive(poller.poll((next_send - now) / 1e9, 1024))
            # Drain what is still in flight.
            while True:
                now = monotonic_ns()
                if now >= min(drain_end, quiet_end):
                    break
                events = poller.poll(min(drain_end, quiet_end) / 1e9 - now / 1e9, 1024)
                if events:
                    quiet_end = monotonic_ns() + int(DRAIN_QUIET_S * 1e9)
                receive(events)
        finally:
            poller.close()
        wall = (monotonic_ns() - start) / 1e9
        cpu = time.process_time() - cpu0
        latencies.sort()
        return LoadResult(
            calls=self.calls, seconds=(end - start) / 1e9, sent=sent, received=received,
            sent_a_to_b=sent_dir[0], sent_b_to_a=sent_dir[1],
            lost_a_to_b=sent_dir[0] - recv_dir[0], lost_b_to_a=sent_dir[1] - recv_dir[1],
            crossed=crossed, malformed=malformed,
            latency_p50_ms=_percentile(latencies, 0.5), latency_p99_ms=_percentile(latencies, 0.99),
            latency_max_ms=latencies[-1] / 1e6 if latencies else math.nan,
            max_late_ms=max_late / 1e6, cpu_seconds=cpu, wall_seconds=wall)


class LoadProcess:
    """The load in a subprocess (this file), optionally pinned to one CPU; `close()` is safe twice."""

    def __init__(self, calls: int, seconds: float, workdir: Path, cpu: int | None = None) -> None:
        self.targets_file = workdir / f"rtp-load-targets-{os.getpid()}-{id(self)}.json"
        args = [sys.executable, str(Path(__file__).resolve()), "--calls", str(calls), "--seconds", str(seconds),
                "--targets-json", str(self.targets_file)]
        if cpu is not None:
            args += ["--pin-cpu", str(cpu)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self._endpoints: list[tuple[Addr, Addr]] | None = None

    def endpoints(self) -> list[tuple[Addr, Addr]]:
        if self._endpoints is None:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"rtp_load exited before listing its endpoints ({self.proc.wait()})")
            self._endpoints = [((a[0], a[1]), (b[0], b[1])) for a, b in json.loads(line)["endpoints"]]
        return self._endpoints

    def set_targets(self, targets: list[tuple[Addr, Addr]]) -> None:
        """Hand over the targets; the load starts at once."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(targets))
        tmp.rename(self.targets_file)

    def result(self, timeout: float) -> LoadResult:
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"rtp_load failed (exit {self.proc.returncode})")
        return LoadResult.from_json(out.strip().splitlines()[-1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        for path in (self.targets_file, self.targets_file.with_suffix(".tmp")):
            path.unlink(missing_ok=True)


def _wait_targets(path: Path) -> list[tuple[Addr, Addr]]:
    deadline = time.monotonic() + TARGETS_WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no targets in {path} after {TARGETS_WAIT_S:g} s")
        time.sleep(0.005)
    data: Any = json.loads(path.read_text())
    return [((str(a[0]), int(a[1])), (str(b[0]), int(b[1]))) for a, b in data]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pin-cpu", type=int, default=None, help="run on this CPU only")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--targets-json", type=Path, help="print endpoints, wait for this file, run")
    how.add_argument("--direct", action="store_true", help="no relay: A and B send to each other")
    args = parser.parse_args()
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})
    load = Load(args.calls)
    try:
        if args.direct:
            load.direct()
        else:
            print(json.dumps({"endpoints": load.endpoints()}), flush=True)
            load.set_targets(_wait_targets(args.targets_json))
        result = load.run(args.seconds)
    finally:
        load.close()
    print(result.to_json(), flush=True)
    if args.direct:
        pps = result.sent / result.seconds
        per_packet = result.cpu_seconds * 1e6 / max(1, result.sent + result.received)
        print(f"# {args.calls} calls direct: {pps:.0f} pkt/s sent and about as many received; generator CPU "
              f"{result.cpu_percent:.0f} % of a core ({per_packet:.1f} µs per packet sent or received); "
              f"lost {result.lost}, crossed {result.crossed}, latency p50/p99 "
              f"{result.latency_p50_ms:.3f}/{result.latency_p99_ms:.3f} ms, max late {result.max_late_ms:.2f} ms",
              file=sys.stderr)


if __name__ == "__main__":
    main()
