"""The dashboard's backend: the `Metrics` sampler (appliance/supervisor/metrics.py) on made-up figures and
on a real loop, then its methods against a real daemon: GetHealth, GetHealthHistory, GetActiveCalls
and HangupCall with sipp calling in.

Quality figures are checked two ways: a sipp call echoing the box's RTP (`-rtp_echo`: sipp sends no
RTCP, so only what the box measures locally), and a small RTP peer in this test that skips every tenth
sequence number and sends one RTCP receiver report with known figures, so the box's loss (RFC 3550
A.3), the peer's reported view and the round trip come out exactly as sent. Everything runs on
127.0.0.1 with bounded waits; every sipp process is stopped by its test.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ERR_NOT_FOUND, ERR_PARAMETER, Api, api_daemon, reply_scenario, unique
from daemon_helpers import HOST, Daemon, async_wait_until, wait_until
from sip_helpers import sipp_caller, sipp_got_bye, with_local_trunk

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.media import rtcp
from appliance.supervisor.metrics import Counts, Memory, Metrics, read_memory

SAMPLE_SECONDS = 0.2  # the test daemon's [monitor] sample_seconds
CALLER = "5551234"
CALLER_NAME = "Tester"
LINE = "local"  # the trunk at 127.0.0.1 that sipp's calls come in through

# Unit tests: the sampler on made-up figures


class Fake:
    """A clock, CPU time, memory and counts the test sets."""

    def __init__(self) -> None:
        self.now = 100.0
        self.wall = 1_700_000_000.0
        self.cpu = 5.0
        self.memory = Memory(rss=50_000_000, used=1_000_000_000, total=4_000_000_000)
        self.counts = Counts(calls=0, sessions=0, calls_started=10, tick_overruns=3)

    def metrics(self, **kwargs: Any) -> Metrics:
        return Metrics(lambda: self.counts, monotonic=lambda: self.now, wall=lambda: self.wall,
                       cpu=lambda: self.cpu, memory=lambda: self.memory, **kwargs)

    def advance(self, seconds: float, cpu: float) -> None:
        self.now += seconds
        self.wall += seconds
        self.cpu += cpu


def test_sample_takes_the_interval_figures() -> None:
    fake = Fake()
    metrics = fake.metrics()
    fake.advance(10.0, cpu=2.5)  # a quarter of one core
    metrics.probe(0.002)
    metrics.probe(0.140)
    metrics.probe(0.010)
    fake.counts = Counts(calls=3, sessions=2, calls_started=14, tick_overruns=5)
    sample = metrics.sample()
    assert sample.time == fake.wall
    assert sample.cpu_percent == pytest.approx(25.0)
    assert sample.loop_lag_ms == pytest.approx(140.0)
    assert (sample.tick_overruns, sample.calls_started, sample.calls, sample.sessions) == (2, 4, 3, 2)
    assert (sample.rss, sample.memory_used, sample.memory_total) == (50_000_000, 1_000_000_000, 4_000_000_000)

    fake.advance(10.0, cpu=15.0)  # one and a half cores: 100 is one core, not the whole machine
    sample = metrics.sample()
    assert sample.cpu_percent == pytest.approx(150.0)
    assert sample.loop_lag_ms == 0.0  # the worst lag is per interval
    assert (sample.tick_overruns, sample.calls_started) == (0, 0)
    assert [s.cpu_percent for s in metrics.history()] == pytest.approx([25.0, 150.0])


def test_history_keeps_the_last_hour_oldest_first() -> None:
    fake = Fake()
    metrics = fake.metrics()
    assert metrics.history_size == 360  # 3600 s of 10 s samples
    for i in range(400):
        fake.advance(10.0, cpu=0.1 * (i % 7))
        metrics.sample()
    kept = metrics.history()
    assert len(kept) == 360
    times = [s.time for s in kept]
    assert times == sorted(times)
    assert times[-1] == fake.wall and times[0] == pytest.approx(fake.wall - 359 * 10.0)
    assert Fake().metrics(sample_seconds=0.5, history_seconds=60).history_size == 120


def test_current_figures() -> None:
    fake = Fake()
    metrics = fake.metrics()
    fake.advance(4.0, cpu=2.0)
    metrics.probe(0.030)
    fake.counts = Counts(calls=1, sessions=1, calls_started=11, tick_overruns=7)
    now = metrics.current()
    assert now == {
        "cpu_percent": 50.0, "memory": {"rss": 50_000_000, "used": 1_000_000_000, "total": 4_000_000_000},
        "loop_lag_ms": 30.0, "tick_overruns": 7, "uptime_seconds": 4.0, "calls": 1, "active_sessions": 1,
        "calls_started": 11,
    }
    metrics.sample()
    fake.advance(0.1, cpu=0.1)  # too short a window to measure: the last sample's CPU and lag stand
    now = metrics.current()
    assert (now["cpu_percent"], now["loop_lag_ms"]) == (50.0, 30.0)


def test_too_short_an_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample interval"):
        Fake().metrics(sample_seconds=0.001)
    config = tmp_path / "c.toml"
    config.write_text("[monitor]\nsample_seconds = 0.001\n")
    with pytest.raises(ConfigError, match=r"\[monitor\].sample_seconds"):
        load_config(config)
    config.write_text("[monitor]\nsample_seconds = 2\n")
    assert load_config(config).monitor.sample_seconds == 2.0


def test_read_memory_of_this_machine() -> None:
    memory = read_memory()
    assert memory.total > memory.used > 0
    assert 0 < memory.rss < memory.total


async def test_sampler_on_a_real_loop_sees_a_stall() -> None:
    metrics = Metrics(lambda: Counts(0, 0, 0, 0), sample_seconds=0.1, probe_seconds=0.02)
    metrics.start()
    try:
        await asyncio.sleep(0.15)
        time.sleep(0.2)  # noqa: ASYNC251 (the stall under test)
        await async_wait_until(lambda: len(metrics.history()) >= 4, 5)
    finally:
        await metrics.close()
        await metrics.close()
    samples = metrics.history()
    assert len(samples) >= 4
    assert max(s.loop_lag_ms for s in samples) >= 150, [s.loop_lag_ms for s in samples]
    assert all(s.cpu_percent >= 0 for s in samples)
    count = len(samples)
    await asyncio.sleep(0.25)
    assert len(metrics.history()) == count  # closed: no more samples


# The box


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("monitor")
    with_local_trunk(root / "data")
    with api_daemon(root, f"[monitor]\nsample_seconds = {SAMPLE_SECONDS}\n") as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


# Answers every call; when the call ends, logs how and ends the session.
ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write("disconnected " + d.internalCode);
    VoxEngine.terminate();
  });
  e.call.answer();
});
"""

def answering_rule(api: Api) -> tuple[str, str, str]:
    """An application whose rule answers calls to a number of its own: (number, application, rule)."""
    number = str(random.randrange(10**8, 10**9))
    app_id, app_name = api.application()
    _, scenario = api.scenario(ANSWER)
    _, rule_name = api.rule(app_id, pattern=number, scenario_name=scenario)
    return number, app_name, rule_name


def live_call(api: Api, number: str, timeout: float = 10.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(session, leg) of the connected call to `number` in GetActiveCalls, once there."""
    found: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def there() -> bool:
        found.clear()
        for session in api.ok("GetActiveCalls")["result"]:
            found.extend((session, leg) for leg in session["calls"]
                         if leg["local_number"] == number and leg["state"] == "CONNECTED")
        return bool(found)

    assert wait_until(there, timeout, interval=0.1), api.ok("GetActiveCalls")
    return found[0]


def session_listed(api: Api, session_id: int) -> bool:
    return bool(api.ok("GetActiveCalls", call_session_history_id=session_id)["result"])


def assert_non_negative(figures: dict[str, Any]) -> None:
    for name, value in figures.items():
        assert value is None or value >= 0, (name, figures)


def test_sipp_call_is_listed_and_hung_up_by_leg(api: Api, daemon: Daemon, tmp_path: Path) -> None:
    number, app_name, rule_name = answering_rule(api)
    started = time.time()
    with sipp_caller(tmp_path, daemon.sip_port, number, CALLER, CALLER_NAME) as sipp:
        session, leg = live_call(api, number)
        assert (session["application_name"], session["rule_name"]) == (app_name, rule_name)
        assert abs(session["start_timestamp"] - started) < 10
        assert leg["direction"] == "incoming" and leg["kind"] == "sip"
        assert (leg["remote_number"], leg["display_name"], leg["line"]) == (CALLER, CALLER_NAME, LINE)
        assert leg["connect_timestamp"] >= leg["start_timestamp"] and leg["connect_date"]
        assert leg["call_id"]

        # sipp echoes the box's own RTP: the box measures what it gets back. sipp sends no RTCP.
        def echoed() -> bool:
            nonlocal leg
            _, leg = live_call(api, number)
            return bool(leg["quality"]["local"]["packets_received"] > 50)

        assert wait_until(echoed, 10, interval=0.2), leg
        quality = leg["quality"]
        assert_non_negative(quality["local"])
        assert quality["local"]["packets_lost"] == 0 and quality["local"]["loss_percent"] == 0
        assert quality["remote"]["packets_sent"] > 0
        assert quality["remote"]["packets_lost"] is None  # no report from sipp
        assert leg["duration"] >= 0

        assert api.ok("HangupCall", call_session_history_id=session["call_session_history_id"],
                      call_id=leg["call_id"])["result"] == 1
        sipp_got_bye(sipp)
    session_id = session["call_session_history_id"]
    assert wait_until(lambda: not session_listed(api, session_id), 10)
    api.wait_ended(session_id)
    log = api.ok("GetSessionLog", call_session_history_id=session_id)["result"]
    assert "disconnected 200" in log, log  # the scenario heard CallEvents.Disconnected and ended

    # The history saw the call: in progress, and started.
    samples = api.ok("GetHealthHistory")["result"]
    recent = [s for s in samples if s["timestamp"] >= started - 1]
    assert any(s["calls"] >= 1 and s["sessions"] >= 1 for s in recent), recent
    assert sum(s["calls_started"] for s in recent) >= 1, recent


def test_hangup_without_call_id_ends_the_session(api: Api, daemon: Daemon, tmp_path: Path) -> None:
    number, _, _ = answering_rule(api)
    with sipp_caller(tmp_path, daemon.sip_port, number, CALLER, CALLER_NAME) as sipp:
        session, _ = live_call(api, number)
        session_id = session["call_session_history_id"]
        assert api.ok("HangupCall", call_session_history_id=session_id)["result"] == 1
        sipp_got_bye(sipp)
    assert wait_until(lambda: not session_listed(api, session_id), 10)
    entry = api.wait_ended(session_id)
    assert "administratively" in entry["finish_reason"], entry
    api.fails("HangupCall", 404, ERR_NOT_FOUND, call_session_history_id=session_id)  # not live any more


def test_unknown_ids(api: Api) -> None:
    api.fails("HangupCall", 404, ERR_NOT_FOUND, call_session_history_id=987654321)
    api.fails("HangupCall", 404, ERR_NOT_FOUND, call_session_history_id=987654321, call_id="leg-1")
    api.fails("HangupCall", 400, ERR_PARAMETER)
    api.fails("HangupCall", 400, ERR_PARAMETER, call_session_history_id="x")
    # A live session without calls: an unknown call id is 404; without one the session ends.
    app_id, _ = api.application()
    _, scenario = api.scenario(reply_scenario({"ok": True}))
    rule_id, _ = api.rule(app_id, pattern=unique("no-calls"), scenario_name=scenario)
    session_id, _ = api.start(rule_id)
    assert wait_until(lambda: session_listed(api, session_id), 10)
    listed = api.ok("GetActiveCalls", call_session_history_id=session_id)["result"]
    assert listed[0]["calls"] == []
    api.fails("HangupCall", 404, ERR_NOT_FOUND, call_session_history_id=session_id, call_id="no-such-call")
    api.ok("HangupCall", call_session_history_id=session_id)
    assert wait_until(lambda: not session_listed(api, session_id), 10)
    assert api.ok("GetActiveCalls", call_session_history_id=987654321)["result"] == []


def test_health_figures(api: Api) -> None:
    health = api.ok("GetHealth")["result"]
    for name in ("sessions", "session_calls", "sip_calls", "media"):  # what it had before
        assert name in health, health
    assert health["cpu_percent"] >= 0
    memory = health["memory"]
    assert memory["total"] > memory["used"] > 0 and 0 < memory["rss"] < memory["total"]
    assert health["loop_lag_ms"] >= 0 and health["uptime_seconds"] > 0
    assert isinstance(health["tick_overruns"], int) and health["tick_overruns"] >= 0


def test_health_history(api: Api) -> None:
    assert wait_until(lambda: len(api.ok("GetHealthHistory")["result"]) >= 3, 10, interval=SAMPLE_SECONDS)
    body = api.ok("GetHealthHistory")
    assert body["sample_seconds"] == SAMPLE_SECONDS
    samples = body["result"]
    assert body["total_count"] == len(samples)
    times = [s["timestamp"] for s in samples]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 10
    for s in samples:
        assert set(s) == {"time", "timestamp", "cpu_percent", "loop_lag_ms", "tick_overruns", "calls", "sessions",
                          "calls_started", "rss", "memory_used"}
        assert s["time"] == time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s["timestamp"]))
        assert_non_negative({k: v for k, v in s.items() if k != "time"})
        assert s["rss"] > 0 and s["memory_used"] > 0


# Loss: a peer of our own


RTP = struct.Struct("!BBHII")
PEER_SSRC = 0x1234ABCD
SENT = 150  # packets of the peer's stream, sequence 1000 onwards...
SKIP = 5  # ...less those whose index ends in 5 (one in ten)
REPORTED_FRACTION, REPORTED_LOST, REPORTED_JITTER = 25, 7, 80  # what the peer says of the box's stream


def udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two sockets on ports P and P+1 (RTP and RTCP) of 127.0.0.1."""
    for _ in range(50):
        rtp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp_sock.bind((HOST, 0))
        port = rtp_sock.getsockname()[1]
        rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp_sock.bind((HOST, port + 1))
        except OSError:
            rtp_sock.close()
            rtcp_sock.close()
            continue
        rtp_sock.setblocking(False)
        rtcp_sock.setblocking(False)
        return rtp_sock, rtcp_sock
    raise AssertionError("no free pair of UDP ports")


class Peer:
    """The far end's media: RTP that skips sequence numbers, and one RTCP receiver report on the box's stream."""

    def __init__(self) -> None:
        self.rtp, self.rtcp = udp_pair()
        self.port = self.rtp.getsockname()[1]
        self.box: tuple[str, int] | None = None  # where the box sends RTP from
        self.box_ssrc = 0
        self.box_highest = 0  # extended (cycles << 16 | sequence), as a report block gives it
        self.box_rtcp: tuple[str, int] | None = None
        self.last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP time, when it came)

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                data, source = self.rtp.recvfrom(2048)
                _, _, seq, _, ssrc = RTP.unpack_from(data)
                cycles = self.box_highest & ~0xFFFF
                if self.box is not None and seq < (self.box_highest & 0xFFFF) - 30000:
                    cycles += 0x10000  # its sequence wrapped: the extended number goes on
                self.box, self.box_ssrc, self.box_highest = source, ssrc, cycles | seq
        with contextlib.suppress(BlockingIOError):
            while True:
                data, source = self.rtcp.recvfrom(2048)
                self.box_rtcp = source
                for packet in rtcp.parse_compound(data):
                    if isinstance(packet, rtcp.SenderReport):
                        self.last_sr = (rtcp.ntp_middle32(packet.ntp_timestamp), time.monotonic())

    def send_stream(self) -> None:
        assert self.box is not None
        for i in range(SENT):
            if i % 10 != SKIP:
                packet = RTP.pack(0x80, 0, 1000 + i, 160 * i, PEER_SSRC) + b"\xff" * 160
                self.rtp.sendto(packet, self.box)
            time.sleep(0.02)
            self.drain()

    def report(self) -> None:
        assert self.box_rtcp is not None and self.last_sr is not None
        lsr, at = self.last_sr
        dlsr = max(0, int((time.monotonic() - at) * 65536) - 2)  # a hair short: rounding never makes it negative
        block = rtcp.ReceptionReport(self.box_ssrc, REPORTED_FRACTION, REPORTED_LOST, self.box_highest,
                                     REPORTED_JITTER, lsr, dlsr)
        self.rtcp.sendto(rtcp.ReceiverReport(PEER_SSRC, (block,)).serialize(), self.box_rtcp)


def test_loss_and_reports_come_out_right(api: Api, daemon: Daemon, tmp_path: Path) -> None:
    number, _, _ = answering_rule(api)
    peer = Peer()
    try:
        with sipp_caller(tmp_path, daemon.sip_port, number, CALLER, CALLER_NAME, media_port=peer.port) as sipp:
            session, leg = live_call(api, number)

            def box_sends() -> bool:
                peer.drain()
                return peer.box is not None

            assert wait_until(box_sends, 10), "the box sent no RTP"
            peer.send_stream()

            def box_reported() -> bool:
                peer.drain()
                return peer.last_sr is not None and peer.box_rtcp is not None

            assert wait_until(box_reported, 10), "the box sent no RTCP sender report"
            peer.report()

            def reported() -> bool:
                nonlocal leg
                _, leg = live_call(api, number)
                return leg["quality"]["remote"]["packets_lost"] is not None

            assert wait_until(reported, 10, interval=0.1), leg
            local, remote = leg["quality"]["local"], leg["quality"]["remote"]
            # RFC 3550 A.1/A.3: the stream counts from its second packet (the first is on probation):
            # expected 1001..1149 = 149, of which the 15 skipped never came.
            expected, lost = SENT - 1, SENT // 10
            assert local["packets_received"] == expected - lost
            assert local["packets_lost"] == lost
            assert local["loss_percent"] == round(100 * lost / expected, 2)
            assert local["jitter_ms"] >= 0
            assert remote["packets_lost"] == REPORTED_LOST
            assert remote["fraction_lost_percent"] == round(REPORTED_FRACTION * 100 / 256, 2)
            assert remote["jitter_ms"] == REPORTED_JITTER * 1000 / 8000
            assert remote["loss_percent"] is not None and 0 < remote["loss_percent"] < 100
            assert remote["round_trip_ms"] is not None and 0 <= remote["round_trip_ms"] < 1000, remote
            api.ok("HangupCall", call_session_history_id=session["call_session_history_id"], call_id=leg["call_id"])
            sipp_got_bye(sipp)
    finally:
        peer.close()
