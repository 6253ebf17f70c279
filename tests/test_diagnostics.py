"""The panel's Logs page: the system log ring (appliance/logs.py) and the SIP trace (appliance/sip/trace.py)
on their own, then GetSystemLog and GetSipTrace against the real daemon and a real sipp call.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import ERR_NOT_FOUND, ERR_PARAMETER, GENEROUS_LIMITS, Api
from daemon_helpers import HOST, Daemon, free_port, running_daemon, wait_until
from sip_helpers import SIPP, sipp, voxfiles, with_local_trunk

from appliance.logs import SYSTEM_LOG_MESSAGE_CHARS, SystemLog
from appliance.sip.trace import TRACE_CALLS, TRACE_MESSAGE_BYTES, TRACE_MESSAGES_PER_CALL, SipTrace, call_id_of
from appliance.sip.transport import Peer

PEER = Peer("udp", "192.0.2.7", 5062)


# The system log ring


def test_ring_numbers_records_and_reads_after_a_sequence_number() -> None:
    ring = SystemLog(lines=100)
    for i in range(10):
        ring.add(logging.INFO, "t", f"line {i}", when=1000.0 + i)
    tail = ring.read()
    assert [r.seq for r in tail.records] == list(range(1, 11))
    assert (tail.last, tail.missed, tail.more) == (10, 0, False)
    assert tail.records[0].as_dict() == {"seq": 1, "time": 1000.0, "level": "info", "logger": "t",
                                         "message": "line 0"}
    tail = ring.read(after=7)
    assert [r.message for r in tail.records] == ["line 7", "line 8", "line 9"]
    assert ring.read(after=10).records == [] and ring.read(after=10).last == 10
    # A cursor from before a restart (beyond the newest record) gets nothing, and `last` to go on from.
    assert ring.read(after=5000).records == [] and ring.read(after=5000).last == 10
    # `count` cuts the answer short: `last` is the last record given, and `more` says there is more.
    tail = ring.read(after=2, count=3)
    assert [r.seq for r in tail.records] == [3, 4, 5] and tail.last == 5 and tail.more


def test_ring_drops_the_oldest_and_says_how_many_were_missed() -> None:
    ring = SystemLog(lines=5)
    for i in range(12):
        ring.add(logging.INFO, "t", f"line {i}")
    tail = ring.read()
    assert [r.seq for r in tail.records] == [8, 9, 10, 11, 12]
    assert tail.missed == 7
    assert ring.read(after=3).missed == 4
    assert ring.read(after=7).missed == 0
    assert ring.read(after=9).missed == 0 and [r.seq for r in ring.read(after=9).records] == [10, 11, 12]


def test_ring_level_filter() -> None:
    ring = SystemLog()
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.DEBUG):
        ring.add(level, "t", logging.getLevelName(level))
    assert [r.message for r in ring.read(min_level=logging.WARNING).records] == ["WARNING", "ERROR"]
    tail = ring.read(min_level=logging.INFO, count=1)
    assert [r.message for r in tail.records] == ["INFO"] and tail.last == 2 and tail.more
    # Filtered-out records still move the cursor on: the next poll does not see them again.
    tail = ring.read(min_level=logging.ERROR)
    assert [r.seq for r in tail.records] == [4] and tail.last == 5 and not tail.more


def test_ring_as_a_handler_formats_and_caps_messages() -> None:
    ring = SystemLog()
    logger = logging.getLogger("test_diagnostics.handler")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(ring)
    try:
        logger.info("call %s from %s", "a", "b")
        logger.warning("x" * (SYSTEM_LOG_MESSAGE_CHARS * 2))
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
    finally:
        logger.removeHandler(ring)
    first, long, failed = ring.read().records
    assert (first.message, first.logger, first.as_dict()["level"]) == ("call a from b", "test_diagnostics.handler",
                                                                       "info")
    assert long.message.startswith("x" * SYSTEM_LOG_MESSAGE_CHARS)
    assert len(long.message) < SYSTEM_LOG_MESSAGE_CHARS + 100 and "characters cut" in long.message
    assert failed.message.startswith("it failed\nTraceback") and "ValueError: boom" in failed.message
    assert failed.as_dict()["level"] == "error"


def test_ring_takes_records_from_many_threads() -> None:
    ring = SystemLog(lines=10_000)
    logger = logging.getLogger("test_diagnostics.threads")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(ring)
    threads_n, per_thread = 8, 500

    def work(n: int) -> None:
        for i in range(per_thread):
            logger.info("%d %d", n, i)
            if i % 50 == 0:
                ring.read(after=max(ring.last - 20, 0))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        logger.removeHandler(ring)
    tail = ring.read(count=10_000)
    assert [r.seq for r in tail.records] == list(range(1, threads_n * per_thread + 1))
    assert tail.last == threads_n * per_thread and tail.missed == 0
    for n in range(threads_n):  # each thread's records in the order it logged them
        assert [r.message for r in tail.records if r.message.startswith(f"{n} ")] == [
            f"{n} {i}" for i in range(per_thread)]


# The SIP trace


def request(call_id: str, method: str = "INVITE", body: bytes = b"", compact: bool = False) -> bytes:
    name = "i" if compact else "Call-ID"
    return (f"{method} sip:a@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK1\r\n"
            f"{name}: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def test_trace_reads_the_call_id_of_what_is_sent() -> None:
    assert call_id_of(request("abc@host")) == "abc@host"
    assert call_id_of(request("compact-1", compact=True)) == "compact-1"
    assert call_id_of(b"SIP/2.0 200 OK\r\ncall-id:   spaced  \r\n\r\n") == "spaced"
    assert call_id_of(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\ni: in-the-body\r\n") == ""
    trace = SipTrace()
    trace.sent(b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n", PEER)  # no Call-ID: not kept
    assert len(trace) == 0 and trace.size == 0


def test_trace_keeps_messages_in_order_with_direction_and_peer() -> None:
    now = [100.0]
    trace = SipTrace(lambda: now[0])
    trace.received("c1", request("c1"), PEER)
    now[0] += 1
    trace.sent(b"SIP/2.0 100 Trying\r\nCall-ID: c1\r\n\r\n", PEER)
    trace.received("c2", request("c2"), Peer("tcp", "2001:db8::1", 5060))
    trace.sent(b"SIP/2.0 200 OK\r\nCall-ID: c1\r\n\r\n", PEER)
    both = trace.messages(["c2", "c1", "c1"])
    assert [(m.call_id, m.outgoing, m.first_line) for m in both] == [
        ("c1", False, "INVITE sip:a@192.0.2.1 SIP/2.0"), ("c1", True, "SIP/2.0 100 Trying"),
        ("c2", False, "INVITE sip:a@192.0.2.1 SIP/2.0"), ("c1", True, "SIP/2.0 200 OK")]
    assert [m.time for m in both] == [100.0, 101.0, 101.0, 101.0]
    assert both[2].peer.transport == "tcp" and both[0].text == request("c1").decode()
    assert trace.messages(["nothing"]) == []


def test_trace_caps_the_messages_of_one_call_id() -> None:
    trace = SipTrace(per_call=10)
    for i in range(25):
        trace.received("c", request("c", body=str(i).encode()), PEER)
    kept = [m.data.split(b"\r\n\r\n")[1].decode() for m in trace.messages(["c"])]
    assert kept == ["0", "1", "2", "3", "4", "20", "21", "22", "23", "24"]  # the first and the latest
    assert trace.dropped(["c"]) == 15
    assert trace.size == sum(len(m.data) for m in trace.messages(["c"]))
    assert TRACE_MESSAGES_PER_CALL == SipTrace().per_call == 100


def test_trace_forgets_the_least_recently_active_call_ids() -> None:
    trace = SipTrace(max_calls=3)
    for name in ("a", "b", "c"):
        trace.received(name, request(name), PEER)
    trace.received("a", request("a", "BYE"), PEER)  # `a` is active again: `b` is now the oldest
    trace.received("d", request("d"), PEER)
    assert len(trace) == 3
    assert trace.messages(["b"]) == []
    assert [m.call_id for m in trace.messages(["a", "c", "d"])] == ["a", "c", "a", "d"]
    trace.received("e", request("e"), PEER)
    assert trace.messages(["c"]) == [] and len(trace) == 3
    assert trace.size == sum(len(m.data) for m in trace.messages(["a", "d", "e"]))
    assert SipTrace().max_calls == TRACE_CALLS == 500


def test_trace_cuts_long_messages_and_bounds_its_bytes() -> None:
    trace = SipTrace()
    big = request("big", body=b"v=0\r\n" + b"a" * (TRACE_MESSAGE_BYTES * 2))
    trace.received("big", big, PEER)
    (kept,) = trace.messages(["big"])
    assert len(kept.data) == TRACE_MESSAGE_BYTES and kept.cut == len(big) - TRACE_MESSAGE_BYTES
    assert kept.text.endswith(f"[{kept.cut} more bytes not kept]")
    small = SipTrace(max_bytes=3000)
    for i in range(10):
        small.received(f"c{i}", request(f"c{i}", body=b"x" * 500), PEER)
    assert small.size <= 3000 and len(small) < 10
    assert small.messages(["c9"]) and not small.messages(["c0"])


# Against the daemon

RING_THEN_ANSWER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  e.call.ring();
  setTimeout(() => e.call.answer(), 200);
});
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("diagnostics")
    config = root / "voxgate.toml"
    config.write_text(GENEROUS_LIMITS)
    data = with_local_trunk(root / "data")
    with running_daemon(data, voxfiles=voxfiles(root / "vox", RING_THEN_ANSWER),
                        extra_args=["--config", str(config)]) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


def test_system_log_shows_start_up_and_then_only_new_lines(daemon: Daemon, api: Api) -> None:
    body = api.ok("GetSystemLog", count=2000)
    records = body["result"]
    assert records and body["missed"] == 0 and body["more"] is False
    assert set(records[0]) == {"seq", "time", "level", "logger", "message"}
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert body["last"] == records[-1]["seq"]
    ready = [r for r in records if r["message"].startswith("VoxGate ready")]
    assert ready and ready[0]["logger"] == "appliance.daemon" and ready[0]["level"] == "info", records[-5:]
    last = body["last"]

    daemon.proc.send_signal(signal.SIGHUP)  # the lines are reloaded, which is logged at INFO
    new: list[dict[str, Any]] = []

    def reloaded() -> bool:
        new[:] = api.ok("GetSystemLog", after=last, level="info")["result"]
        return any(r["message"].startswith("lines reloaded") for r in new)

    assert wait_until(reloaded, 10), new
    assert all(r["seq"] > last for r in new) and not any(r["message"].startswith("VoxGate ready") for r in new)
    assert not any(r["level"] == "debug" for r in new)
    high = api.ok("GetSystemLog", after=last, level="error")
    assert all(r["level"] == "error" for r in high["result"]) and high["last"] >= max(r["seq"] for r in new)

    api.fails("GetSystemLog", 400, ERR_PARAMETER, level="chatty")
    api.fails("GetSystemLog", 400, ERR_PARAMETER, count=2001)
    api.fails("GetSystemLog", 400, ERR_PARAMETER, after=-1)


def _summary(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(direction, method or status) of each message, retransmissions folded."""
    out: list[tuple[str, str]] = []
    for m in messages:
        first = m["first_line"]
        what = first.split()[1] if first.startswith("SIP/2.0 ") else first.split()[0]
        if not out or out[-1] != (m["direction"], what):
            out.append((m["direction"], what))
    return out


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")
def test_sip_trace_of_a_sipp_call(daemon: Daemon, api: Api, tmp_path: Path) -> None:
    result = sipp("-sn", "uac", f"{HOST}:{daemon.sip_port}", "-s", "service", "-m", "1", "-p", str(free_port()),
                  cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sessions = api.ok("GetCallHistory", from_date="2000-01-01 00:00:00", to_date="2100-01-01 00:00:00",
                      desc_order=True, count=1)["result"]
    session_id = int(sessions[0]["call_session_history_id"])
    api.wait_ended(session_id)

    body = api.ok("GetSipTrace", call_session_history_id=session_id)
    messages = body["result"]
    assert _summary(messages) == [("in", "INVITE"), ("out", "100"), ("out", "180"), ("out", "200"), ("in", "ACK"),
                                  ("in", "BYE"), ("out", "200")], [m["first_line"] for m in messages]
    assert set(messages[0]) == {"time", "direction", "remote", "transport", "sip_call_id", "first_line", "text"}
    (call_id,) = {m["sip_call_id"] for m in messages}
    assert body["sip_call_ids"] == [call_id] and body["missed"] == 0
    assert all(m["transport"] == "udp" and re.fullmatch(r"127\.0\.0\.1:\d+", m["remote"]) for m in messages)
    assert [m["time"] for m in messages] == sorted(m["time"] for m in messages)
    assert messages[0]["text"].startswith("INVITE sip:service@") and "v=0" in messages[0]["text"]
    assert f"Call-ID: {call_id}" in messages[0]["text"] or f"call-id: {call_id}".lower() in messages[0]["text"].lower()

    by_id = api.ok("GetSipTrace", sip_call_id=call_id)
    assert by_id["result"] == messages

    api.fails("GetSipTrace", 404, ERR_NOT_FOUND, sip_call_id="no-such-call@nowhere")
    api.fails("GetSipTrace", 404, ERR_NOT_FOUND, call_session_history_id=987654)
    api.fails("GetSipTrace", 400, ERR_PARAMETER)
    api.fails("GetSipTrace", 400, ERR_PARAMETER, sip_call_id=call_id, call_session_history_id=session_id)
    assert wait_until(lambda: "Traceback" not in daemon.stderr_text(), 0.1)
