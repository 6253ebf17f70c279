"""The appliance half of the media bench: a MediaPlane bridging C PCMU calls, in a process of its own.

Started by tools/bench/media.py (pinned to one core, OPENBLAS_NUM_THREADS=1), under uvloop with the
real clock. It reads the load generator's endpoints (JSON [[[hostA, portA], [hostB, portB]], ...])
from --peers, makes two endpoints per call on 127.0.0.1, configures leg A of call i to send to the
generator's A_i and leg B to its B_i (PCMU/8000, PT 0, events 101, 20 ms, sendrecv; RTCP goes to a
socket of this process that is never read), bridges them both ways (A -> B, B -> A) and prints
{"ports": [[port A, port B], ...]}. On a "go" line on stdin it starts the tick; after --warmup
seconds it resets the plane's tick statistics and snapshots every counter and its own CPU time
(os.times(): utime + stime of all threads), --window seconds later it snapshots again and prints the
window's figures as one JSON line; on "quit" (or end of stdin) it closes the plane and exits.

*Lost inside the appliance* (`lost_inside`), over the window, summed over the endpoints: packets of
a stream that reached the appliance but whose audio never went out again, i.e.

    lost_inside = kernel_drops + errors + unplayed
    unplayed    = sum over endpoints X (peer Y) of
                  received_X - (sent_Y - concealed_X) - (buffered_X at end - buffered_X at start)

- kernel_drops: datagrams the kernel dropped on the endpoints' RTP sockets (receive buffer full:
  the loop did not read in time), the `drops` column of /proc/net/udp;
- errors: packets read but refused (stray source, flood, garbage, bad payload type...);
- received_X: audio packets X accepted (`stats.packets`), late and duplicate ones included;
- sent_Y - concealed_X: ticks in which Y sent on a frame X's jitter buffer played out (Y sends one
  packet per tick either way; in a concealed tick - nothing to play, or the buffer growing by a
  tick - the frame it sends is concealment, not a received packet);
- buffered_X: packets waiting in X's jitter buffer (received, not yet played) at a window edge.
So a packet that arrived and was played out is not lost; one that came too late for its tick, was a
duplicate, was skipped when the buffer shrank, or was thrown away by a resync is. The JSON also
gives the parts (late, duplicates, shrunk, concealed), the plane's tick statistics and packet totals.
Concealed ticks are not losses in themselves: a packet the generator never delivered (or one lost
by the kernel, counted above) is concealed too, and so is each tick by which a buffer grows.

With --errors (for tools/bench/media_flood.py) the ports line also gives each endpoint's RTCP port
("rtcp_ports", same shape as "ports") and the result also gives, over the window, the endpoints' bad
input by kind ("errors_by_kind", summed over the endpoints), the kernel's drops per local port
("drops_by_port", nonzero only) and, per endpoint's RTP port, the audio packets it accepted and the
ticks it concealed ("by_port": {port: [received, concealed]}); the other keys are unchanged.

    .venv/bin/python tools/bench/media_relay.py --peers FILE --calls N --warmup 2 --window 17 [--profile] [--errors]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

if __package__ in (None, ""):  # run as a file: make `appliance` and `tools.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.clock import RealClock
from appliance.media.endpoint import RtpEndpoint
from appliance.media.plane import MediaPlane, TickStats
from appliance.media.ports import RtpPorts
from appliance.media.srtp import SrtpKeys

HOST = "127.0.0.1"
PORT_FIRST = 10_000  # below rtpengine's 20000-29999 and the ephemeral range the generator's sockets use
PORT_LAST = 19_998
PROFILE_TOP = 30


@dataclass(frozen=True)
class Media:
    """What offer/answer would have agreed: PCMU both ways to one of the generator's endpoints."""

    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    codec: str = "PCMU"
    payload_type: int = 0
    clock_rate: int = 8000
    telephone_event: int | None = 101
    ptime: int = 20
    direction: str = "sendrecv"
    srtp: SrtpKeys | None = None


class Owner:
    """A leg that only counts what it hears."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}

    def key_received(self, key: str, kind: str) -> None:
        self.events[f"key-{kind}"] = self.events.get(f"key-{kind}", 0) + 1

    def media_event(self, name: str, detail: str = "") -> None:
        self.events[name] = self.events.get(name, 0) + 1


def buffered(endpoint: RtpEndpoint) -> int:
    """Packets (one tick each) in the endpoint's jitter buffer, received and not yet played."""
    jitter = endpoint.jitter
    return jitter._mask.count(1) // jitter.tick_units  # the bench reads the ring's occupancy mask


def drops_by_port(ports: set[int]) -> dict[int, int]:
    """Datagrams the kernel dropped on each of these local UDP ports of 127.0.0.1 (/proc/net/udp `drops`)."""
    drops: dict[int, int] = {}
    with open("/proc/net/udp") as lines:
        next(lines)
        for line in lines:
            fields = line.split()
            address, port = fields[1].split(":")
            if address == "0100007F" and int(port, 16) in ports:
                drops[int(port, 16)] = drops.get(int(port, 16), 0) + int(fields[-1])
    return drops


def kernel_drops(ports: set[int]) -> int:
    """Datagrams the kernel dropped on these local UDP ports of 127.0.0.1 (/proc/net/udp `drops`)."""
    return sum(drops_by_port(ports).values())


def run_delay() -> float:
    """Seconds the loop's thread has waited, runnable, for a CPU (/proc/self/schedstat): contention."""
    return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9


@dataclass
class Snapshot:
    cpu: float
    waited: float
    at: float
    received: list[int]
    sent: list[int]
    concealed: list[int]
    late: list[int]
    duplicates: list[int]
    shrunk: list[int]
    buffered: list[int]
    errors: int
    drops: int
    errors_by_kind: dict[str, int] = field(default_factory=dict)  # filled only when asked (--errors)
    drops_by_port: dict[int, int] = field(default_factory=dict)  # likewise, the RTP and RTCP ports


def errors_by_kind(endpoints: list[RtpEndpoint]) -> dict[str, int]:
    """The endpoints' bad input, by kind, summed over the endpoints."""
    kinds: dict[str, int] = {}
    for endpoint in endpoints:
        for kind, count in endpoint.errors.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return kinds


def snapshot(endpoints: list[RtpEndpoint], ports: set[int], end: bool,
             detail_ports: set[int] | None = None) -> Snapshot:
    """Every counter; the CPU time is read last at the start of the window and first at its end.

    With `detail_ports`, also the errors by kind and the kernel's drops on each of those ports.
    """
    cpu = 0.0
    if end:
        times = os.times()
        cpu = times.user + times.system
    snap = Snapshot(
        cpu=cpu, waited=run_delay(), at=time.monotonic(), received=[e.stats.packets for e in endpoints],
        sent=[e.packets_sent for e in endpoints], concealed=[e.jitter.lost for e in endpoints],
        late=[e.jitter.late for e in endpoints], duplicates=[e.jitter.duplicates for e in endpoints],
        shrunk=[e.jitter.shrunk for e in endpoints], buffered=[buffered(e) for e in endpoints],
        errors=sum(sum(e.errors.values()) for e in endpoints), drops=kernel_drops(ports))
    if detail_ports is not None:
        snap.errors_by_kind = errors_by_kind(endpoints)
        snap.drops_by_port = drops_by_port(detail_ports)
    if not end:
        times = os.times()
        snap.cpu = times.user + times.system
        snap.at = time.monotonic()
    return snap


def window(first: Snapshot, last: Snapshot, calls: int) -> dict[str, Any]:
    """The window's figures (see the module docstring for lost_inside)."""
    def delta(name: str) -> list[int]:
        a: list[int] = getattr(first, name)
        b: list[int] = getattr(last, name)
        return [y - x for x, y in zip(a, b, strict=True)]

    received, sent, concealed = delta("received"), delta("sent"), delta("concealed")
    grew = delta("buffered")
    unplayed = 0
    for call in range(calls):
        for x, y in ((2 * call, 2 * call + 1), (2 * call + 1, 2 * call)):
            unplayed += received[x] - (sent[y] - concealed[x]) - grew[x]
    errors = last.errors - first.errors
    drops = last.drops - first.drops
    return {
        "seconds": last.at - first.at, "cpu_seconds": last.cpu - first.cpu,
        "cpu_wait_seconds": last.waited - first.waited,
        "packets_received": sum(received), "packets_sent": sum(sent),
        "lost_inside": drops + errors + unplayed, "unplayed": unplayed, "kernel_drops": drops, "errors": errors,
        "late": sum(delta("late")), "duplicates": sum(delta("duplicates")), "shrunk": sum(delta("shrunk")),
        "concealed": sum(concealed),
    }


def read_peers(path: Path) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    data: Any = json.loads(path.read_text())
    return [((str(a[0]), int(a[1])), (str(b[0]), int(b[1]))) for a, b in data]


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    peers = read_peers(args.peers)
    if len(peers) != args.calls:
        raise SystemExit(f"{len(peers)} peers for {args.calls} calls")
    plane = MediaPlane(RealClock(loop), RtpPorts(PORT_FIRST, PORT_LAST))
    rtcp_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never read: RTCP reports end here
    try:
        rtcp_sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        rtcp_sink.bind((HOST, 0))
        rtcp_port = int(rtcp_sink.getsockname()[1])
        endpoints: list[RtpEndpoint] = []
        for peer_a, peer_b in peers:
            legs = [plane.endpoint(HOST, Owner()) for _ in range(2)]
            for leg, peer in zip(legs, (peer_a, peer_b), strict=True):
                leg.configure(Media(peer[0], peer[1], rtcp_port))
            plane.send(legs[0].id, legs[1].id)
            plane.send(legs[1].id, legs[0].id)
            endpoints.extend(legs)
        ports = {e.port for e in endpoints}
        listing: dict[str, Any] = {"ports": [[endpoints[2 * i].port, endpoints[2 * i + 1].port]
                                             for i in range(args.calls)]}
        detail_ports: set[int] | None = None
        if args.errors:
            rtcp_ports = [e._rtcp.getsockname()[1] for e in endpoints]  # the bench reads the socket it was given
            listing["rtcp_ports"] = [[rtcp_ports[2 * i], rtcp_ports[2 * i + 1]] for i in range(args.calls)]
            detail_ports = ports | set(rtcp_ports)
        print(json.dumps(listing), flush=True)
        reader = await stdin_lines()
        if (await reader.readline()).strip() != b"go":
            return
        plane.start()
        await asyncio.sleep(args.warmup)
        profile = cProfile.Profile() if args.profile else None
        plane.stats = TickStats()
        first = snapshot(endpoints, ports, end=False, detail_ports=detail_ports)
        if profile is not None:
            profile.enable()
        await asyncio.sleep(args.window)
        if profile is not None:
            profile.disable()
        last = snapshot(endpoints, ports, end=True, detail_ports=detail_ports)
        stats = plane.stats.summary()
        result = {"calls": args.calls, **window(first, last, args.calls), **stats,
                  "max_lateness_ms": round(plane.stats.max_lateness * 1000, 3)}
        if detail_ports is not None:
            result["errors_by_kind"] = {kind: count - first.errors_by_kind.get(kind, 0)
                                        for kind, count in sorted(last.errors_by_kind.items())
                                        if count > first.errors_by_kind.get(kind, 0)}
            result["drops_by_port"] = {str(port): count - first.drops_by_port.get(port, 0)
                                       for port, count in sorted(last.drops_by_port.items())
                                       if count > first.drops_by_port.get(port, 0)}
            result["by_port"] = {str(e.port): [last.received[n] - first.received[n],
                                               last.concealed[n] - first.concealed[n]]
                                 for n, e in enumerate(endpoints)}
        print(json.dumps(result), flush=True)
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(PROFILE_TOP)
            print(out.getvalue(), file=sys.stderr, flush=True)
        while (line := await reader.readline()) and line.strip() != b"quit":
            pass
    finally:
        plane.close()
        rtcp_sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--peers", type=Path, required=True, help="the generator's endpoints, as JSON")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds after go before the window")
    parser.add_argument("--window", type=float, required=True, help="seconds measured")
    parser.add_argument("--pin-cpu", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the window; top functions to stderr")
    parser.add_argument("--errors", action="store_true",
                        help="also list the RTCP ports, and report errors by kind and drops per port")
    args = parser.parse_args()
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
