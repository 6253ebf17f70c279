"""Media plane under a flood of bad input: 100 bridged PCMU calls, then the same with a flood.

Two phases of PHASE_S seconds each, each a fresh run set up as tools/bench/media.py does (the relay,
tools/bench/media_relay.py --errors, pinned to core 0; the RTP load generator, tools/bench/rtp_load.py,
pinned to core 1; both measured over the same steady-state window):
1. normal: the load alone;
2. flood: the load, and for the whole phase a third process (this file with --flood-worker, pinned
   to core 1 as well, so it shares that core with the generator) sending as fast as it can, from
   FLOOD_SOCKETS sockets of its own on 127.0.0.1 (none of them the latched source of any stream),
   a shuffled mix of five kinds of packets to the RTP ports of FLOODED endpoints and to the RTCP
   port of the first of them:
   - garbage: random bytes whose first byte is not RTP version 2;
   - truncated: RTP headers cut short, or whose CSRC list, header extension or padding run past
     the end of the packet;
   - payload-type: a well-formed RTP packet with a payload type that was not negotiated (RTCP's
     72-76 among them);
   - stray: a valid PCMU RTP packet (PT 0, 160 bytes of payload, one SSRC per socket);
   - ssrc: a valid PCMU RTP packet with a random SSRC.
Columns: flood packets per second sent (the flood process's count over its run), tick lateness
p50/p99/max and overruns and skipped ticks (the plane's tick statistics over the window), packets
*lost inside the appliance* as media.py defines it (media_relay.py: kernel drops + packets refused +
unplayed; in the flood phase the refused flood packets count in it too), good packets lost end to end
(the generator's count after its warm-up: sent and never received intact), the relay's CPU in % of a
core, then the endpoints' bad input by kind over the window (RtpEndpoint.errors summed over the
endpoints). A verdict line follows: whether bad input delayed the tick (p99 lateness under
TARGET_P99_MS in the flood phase) and whether any good packet was lost. Everything runs on 127.0.0.1;
every process is stopped and the temp dir removed on exit, also on Ctrl-C.

    .venv/bin/python tools/bench/media_flood.py [--seconds 10] [--calls 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `tools.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.bench import media_rtpengine
from tools.bench.media import RELAY, Relay
from tools.bench.rtp_load import HOST, LoadProcess, LoadResult
from tools.bench.sip_setup import interrupts_raise

CALLS = 100
PHASE_S = 10.0
SERVER_CORE = media_rtpengine.SERVER_CORE
LOAD_CORE = media_rtpengine.LOAD_CORE  # the flood runs here too, beside the generator
FLOODED = ((0, 0), (1, 1), (50, 0), (99, 1))  # (call, side 0 = A / 1 = B) of the endpoints flooded on RTP
FLOOD_SOCKETS = 8
VARIANTS = 32  # packets pre-built per kind
KINDS = ("garbage", "truncated", "payload-type", "stray", "ssrc")
ERROR_KINDS = ("garbage", "payload-type", "ssrc", "truncated", "flood", "stray", "srtp")  # RtpEndpoint's
NOT_GOOD = ("stray", "rtcp")  # refusals that cannot hit a good packet here: another source, the RTCP port
TARGET_P99_MS = 2.0
EDGE_SLACK = 1  # packets an endpoint may receive fewer than the others in a window by where its sends fall
RTP = struct.Struct("!BBHII")
PCMU_PAYLOAD = 160
STOP_TIMEOUT_S = 10.0
Addr = tuple[str, int]


# The flood process.


def flood_packets(rng: random.Random) -> dict[str, list[bytes]]:
    """VARIANTS packets of each kind."""
    def payload() -> bytes:
        return rng.randbytes(PCMU_PAYLOAD)

    def rtp(pt: int, ssrc: int, extra: bytes = b"") -> bytes:
        return RTP.pack(0x80, pt, rng.getrandbits(16), rng.getrandbits(32), ssrc) + extra

    garbage = []
    for _ in range(VARIANTS):
        data = bytearray(rng.randbytes(rng.randint(1, 300)))
        data[0] = (data[0] & 0x3F) | rng.choice((0x00, 0x40, 0xC0))  # version 0, 1 or 3
        garbage.append(bytes(data))
    truncated = []
    for n in range(VARIANTS):
        match n % 5:
            case 0:  # a header cut short
                truncated.append(bytes([0x80, 0]) + rng.randbytes(rng.randint(0, 9)))
            case 1:  # a header extension flag and no room for the extension header
                truncated.append(bytes([0x90, 0]) + rng.randbytes(10 + rng.randint(0, 3)))
            case 2:  # an extension longer than the packet
                head = RTP.pack(0x90, 0, rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(32))
                truncated.append(head + struct.pack("!HH", 0xBEDE, 200) + rng.randbytes(20))
            case 3:  # 15 CSRCs announced, too few bytes for them
                truncated.append(RTP.pack(0x8F, 0, 1, 2, rng.getrandbits(32)) + rng.randbytes(20))
            case _:  # padding longer than the packet
                truncated.append(RTP.pack(0xA0, 0, 1, 2, rng.getrandbits(32)) + rng.randbytes(19) + b"\xff")
    wrong = (8, 9, 18, 96, 72, 73, 74, 75, 76, 100, 127)
    payload_type = [rtp(wrong[n % len(wrong)], rng.getrandbits(32), payload()) for n in range(VARIANTS)]
    stray = [rtp(0, 0x5EA7_0000 + n % FLOOD_SOCKETS, payload()) for n in range(VARIANTS)]
    ssrc = [rtp(0, rng.getrandbits(32), payload()) for _ in range(VARIANTS)]
    return {"garbage": garbage, "truncated": truncated, "payload-type": payload_type, "stray": stray,
            "ssrc": ssrc}


def flood(targets: list[Addr], seconds: float) -> dict[str, Any]:
    """Send the mix to `targets` as fast as possible for `seconds`; what was sent, by kind."""
    rng = random.Random(0xF100D)
    packets = flood_packets(rng)
    socks: list[socket.socket] = []
    try:
        for _ in range(FLOOD_SOCKETS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(sock)
            sock.bind((HOST, 0))
            sock.setblocking(False)
        entries = [(kind, packet, target) for kind in KINDS for packet in packets[kind] for target in targets]
        rng.shuffle(entries)
        plan = [(socks[n % FLOOD_SOCKETS].sendto, packet, target) for n, (_, packet, target) in enumerate(entries)]
        per_pass = {kind: sum(1 for k, _, _ in entries if k == kind) for kind in KINDS}
        failed = passes = 0
        cpu0 = time.process_time()
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline:
            for sendto, packet, target in plan:
                try:
                    sendto(packet, target)
                except OSError:  # the kernel refused it (buffer full, ICMP queued): not sent
                    failed += 1
            passes += 1
        wall = time.monotonic() - start
        cpu = time.process_time() - cpu0
    finally:
        for sock in socks:
            sock.close()
    sent = {kind: count * passes for kind, count in per_pass.items()}
    return {"sent": sent, "attempted": sum(sent.values()), "failed": failed,
            "packets": sum(sent.values()) - failed, "seconds": wall, "cpu_seconds": cpu,
            "sources": FLOOD_SOCKETS}


def flood_main(args: argparse.Namespace) -> None:
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})
    targets: list[Addr] = [(str(h), int(p)) for h, p in json.loads(args.flood_targets)]
    print(json.dumps(flood(targets, args.seconds)), flush=True)


class Flooder:
    """The flood process (this file, --flood-worker) on `cpu`; it starts at once. `close()` is safe twice."""

    def __init__(self, targets: list[Addr], seconds: float, cpu: int) -> None:
        args = [sys.executable, str(Path(__file__).resolve()), "--flood-worker", "--flood-targets",
                json.dumps(targets), "--seconds", str(seconds), "--pin-cpu", str(cpu)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)

    def result(self, timeout: float) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"the flood process failed (exit {self.proc.returncode})")
        data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return data

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# The bench.


class ErrorsRelay(Relay):
    """media.py's Relay, with --errors: RTCP ports in the listing, errors by kind and drops per port."""

    def __init__(self, calls: int, peers_file: Path, warmup: float, window: float) -> None:
        args = ["taskset", "-c", str(SERVER_CORE), sys.executable, str(RELAY), "--peers", str(peers_file),
                "--calls", str(calls), "--warmup", str(warmup), "--window", str(window), "--errors"]
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def listing(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(RTP ports, RTCP ports): (A's, B's) per call."""
        data = self._line("its ports")
        return ([(int(a), int(b)) for a, b in data["ports"]], [(int(a), int(b)) for a, b in data["rtcp_ports"]])


@dataclass
class Phase:
    name: str
    tick: dict[str, Any]  # media_relay.py's window figures
    load: LoadResult
    flood: dict[str, Any] | None  # the flood process's figures
    flooded_ports: set[int]  # RTP ports the flood was sent to (the same endpoints are named in phase 1)
    rtcp_port: int  # the RTCP port it was sent to

    @property
    def flood_pps(self) -> float:
        return float(self.flood["packets"]) / float(self.flood["seconds"]) if self.flood else 0.0

    @property
    def cpu_percent(self) -> float:
        return 100.0 * float(self.tick["cpu_seconds"]) / float(self.tick["seconds"])

    @property
    def errors(self) -> dict[str, int]:
        kinds: dict[str, int] = self.tick["errors_by_kind"]
        return kinds

    @property
    def drops_flooded(self) -> int:
        """Kernel drops on the flooded RTP ports: good packets and flood alike (in lost_inside's kernel drops)."""
        return sum(n for port, n in self.tick["drops_by_port"].items() if int(port) in self.flooded_ports)

    @property
    def drops_rtcp(self) -> int:
        """Kernel drops on the flooded RTCP port (not in lost_inside: only RTP ports count there)."""
        return int(self.tick["drops_by_port"].get(str(self.rtcp_port), 0))

    @property
    def drops_elsewhere(self) -> int:
        """Kernel drops on every other RTP or RTCP port of the endpoints."""
        skip = self.flooded_ports | {self.rtcp_port}
        return sum(n for port, n in self.tick["drops_by_port"].items() if int(port) not in skip)

    def by_port(self, flooded: bool) -> list[tuple[int, int, int]]:
        """(RTP port, audio packets accepted, ticks concealed) over the window: the flooded endpoints, or the others."""
        return [(int(port), int(got), int(hid)) for port, (got, hid) in self.tick["by_port"].items()
                if (int(port) in self.flooded_ports) == flooded]

    @property
    def missing_good(self) -> int:
        """Good packets the flooded endpoints never accepted: fewer than the others' median, beyond EDGE_SLACK."""
        typical = statistics.median(got for _, got, _ in self.by_port(False))
        return sum(max(0, int(typical - got) - EDGE_SLACK) for _, got, _ in self.by_port(True))

    @property
    def good_refused(self) -> int:
        """Refusals of kinds a packet of the generator's streams could have met."""
        return sum(n for kind, n in self.errors.items() if kind not in NOT_GOOD)

    @property
    def good_lost_inside(self) -> int:
        """Good packets certainly lost inside over the window (drops on flooded ports are not told apart)."""
        return max(0, int(self.tick["unplayed"])) + self.good_refused + self.drops_elsewhere + self.missing_good


def run_phase(name: str, calls: int, seconds: float, with_flood: bool, work: Path) -> Phase:
    work.mkdir()
    warmup, length = media_rtpengine.window(seconds)
    load = LoadProcess(calls, seconds, work, cpu=LOAD_CORE)
    relay: ErrorsRelay | None = None
    flooder: Flooder | None = None
    try:
        peers = work / "peers.json"
        peers.write_text(json.dumps(load.endpoints()))
        relay = ErrorsRelay(calls, peers, warmup, length)
        rtp_ports, rtcp_ports = relay.listing()
        flooded = [rtp_ports[call % calls][side] for call, side in FLOODED]
        rtcp_target = rtcp_ports[FLOODED[0][0] % calls][FLOODED[0][1]]
        load.set_targets([((HOST, a), (HOST, b)) for a, b in rtp_ports])
        relay.tell("go")
        if with_flood:
            flooder = Flooder([(HOST, port) for port in [*flooded, rtcp_target]], seconds, LOAD_CORE)
        tick = relay.result()
        result = load.result(timeout=seconds + 60)
        flood_result = flooder.result(timeout=seconds + 60) if flooder is not None else None
        return Phase(name, tick, result, flood_result, set(flooded), rtcp_target)
    finally:
        if flooder is not None:
            flooder.close()
        if relay is not None:
            relay.close()
        load.close()


def kinds_seen(phases: list[Phase]) -> list[str]:
    extra = sorted({kind for phase in phases for kind in phase.errors} - set(ERROR_KINDS))
    return [*ERROR_KINDS, *extra]


def head(kinds: list[str]) -> str:
    return (f"{'phase':<6} {'flood/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'overrun':>7} {'skipped':>7} "
            f"{'lost in':>8} {'lost e2e':>8} {'CPU':>6} " + " ".join(f"{kind:>{max(7, len(kind))}}" for kind in kinds))


def line(phase: Phase, kinds: list[str]) -> str:
    t = phase.tick
    return (f"{phase.name:<6} {phase.flood_pps:>8.0f} {t['lateness_p50_ms']:>7.3f} {t['lateness_p99_ms']:>7.3f} "
            f"{t['max_lateness_ms']:>7.3f} {t['overruns']:>7} {t['skipped']:>7} {t['lost_inside']:>8} "
            f"{phase.load.lost:>8} {phase.cpu_percent:>5.1f}% "
            + " ".join(f"{phase.errors.get(kind, 0):>{max(7, len(kind))}}" for kind in kinds))


def details(phase: Phase) -> list[str]:
    t, load = phase.tick, phase.load
    out = [f"{phase.name}: window {t['seconds']:.2f} s, {t['ticks']} ticks, busy {t['busy_ms_per_tick']:.3f} ms/tick, "
           f"waited for the CPU {t['cpu_wait_seconds']:.2f} s; in {t['packets_received']} / out {t['packets_sent']} "
           f"packets; lost inside {t['lost_inside']} = kernel drops on RTP ports {t['kernel_drops']} (on the flooded "
           f"ones {phase.drops_flooded}; besides, on the flooded RTCP port {phase.drops_rtcp}, on any other port "
           f"{phase.drops_elsewhere}) + refused {t['errors']} (of kinds a good "
           f"packet could meet: {phase.good_refused}) + unplayed {t['unplayed']} (late {t['late']}, duplicates "
           f"{t['duplicates']}, shrunk {t['shrunk']}); concealed ticks {t['concealed']}",
           f"{phase.name}: the {len(FLOODED)} endpoints flooded in phase 2, port: audio packets accepted/ticks "
           f"concealed: " + ", ".join(f"{port}: {got}/{hid}" for port, got, hid in phase.by_port(True))
           + f"; the other endpoints, median {statistics.median(got for _, got, _ in phase.by_port(False)):g}/"
           f"{statistics.median(hid for _, _, hid in phase.by_port(False)):g}, max concealed "
           f"{max(hid for _, _, hid in phase.by_port(False))}; good packets the flooded ones missed "
           f"{phase.missing_good}",
           f"{phase.name}: generator sent {load.sent} (measured {load.sent_a_to_b + load.sent_b_to_a}), lost e2e "
           f"{load.lost}, crossed {load.crossed}, malformed {load.malformed}, latency p50/p99/max "
           f"{load.latency_p50_ms:.2f}/{load.latency_p99_ms:.2f}/{load.latency_max_ms:.2f} ms, sender late at "
           f"worst {load.max_late_ms:.2f} ms, CPU {load.cpu_percent:.0f}%"]
    if phase.flood is not None:
        f = phase.flood
        out.append(f"{phase.name}: flood {f['packets']} packets in {f['seconds']:.2f} s from {f['sources']} sources "
                   f"({', '.join(f'{kind} {n}' for kind, n in f['sent'].items())}; refused by the kernel "
                   f"{f['failed']}), its CPU {100 * f['cpu_seconds'] / f['seconds']:.0f}%")
    return out


def verdict(phases: list[Phase]) -> str:
    flooded = next((p for p in phases if p.flood is not None), None)
    if flooded is None:
        return "verdict: no flood phase measured"
    p99 = flooded.tick["lateness_p99_ms"]
    delayed = p99 >= TARGET_P99_MS
    good = [(p.name, p.load.lost, p.good_lost_inside, p.drops_flooded) for p in phases]
    lost = any(inside for _, _, inside, _ in good)
    parts = "; ".join(f"{name}: {inside} inside the appliance over the window (unplayed + refused good + kernel "
                      f"drops on unflooded ports + missed by flooded endpoints), {ambiguous} kernel drops on the "
                      f"flooded RTP ports (flood and good alike), {e2e} end to end by the generator (whole run, "
                      f"edges included)" for name, e2e, inside, ambiguous in good)
    return (f"bad input {'DELAYED' if delayed else 'did not delay'} the tick (flood phase p99 {p99:.3f} ms "
            f"{'>=' if delayed else '<'} {TARGET_P99_MS:g} ms, max {flooded.tick['max_lateness_ms']:.3f} ms); "
            f"{'good packets WERE lost inside' if lost else 'no good packet was lost inside'} ({parts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=PHASE_S, help="length of each phase")
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--flood-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flood-targets", default="[]", help=argparse.SUPPRESS)
    parser.add_argument("--pin-cpu", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_worker:
        flood_main(args)
        return
    warmup, length = media_rtpengine.window(args.seconds)
    print(f"{args.calls} bridged PCMU calls; relay pinned to core {SERVER_CORE}, RTP load and flood on core "
          f"{LOAD_CORE}; {args.seconds:g} s per phase, measured over {length:g} s from {warmup:g} s in; flood from "
          f"{FLOOD_SOCKETS} stray sockets to the RTP ports of {len(FLOODED)} endpoints and the RTCP port of one")
    phases: list[Phase] = []
    with interrupts_raise(), tempfile.TemporaryDirectory(prefix="media-flood-") as tmp:
        try:
            for name, with_flood in (("normal", False), ("flood", True)):
                phases.append(run_phase(name, args.calls, args.seconds, with_flood, Path(tmp) / name))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
    kinds = kinds_seen(phases)
    print(head(kinds))
    for phase in phases:
        print(line(phase, kinds))
    for phase in phases:
        for text in details(phase):
            print(text)
    print(verdict(phases), flush=True)


if __name__ == "__main__":
    main()
