"""The example scenarios shipped in scenarios/voxfiles, run as shipped, with real phones over SIP.

The daemon loads the example folder (`--voxfiles scenarios/voxfiles`); baresip phones register as
local SIP users (the simulated user 100 and users 101, 102 added to the store before the start)
and call the numbers of the example rules:

* 500 `ivr`: key 1 plays the beeps and hangs up; an invalid key and silence repeat the menu, then
  the box hangs up; key 2 bridges the caller with the operator (user 101);
* 6101 `forward`: easyProcess to user 101;
* 700 `conference` (+ `conference-room`): a wrong PIN is asked again, the right one joins the
  standalone conference session, where two participants hear each other;
* 800 `voicemail`: the message is recorded and a JSON notification is POSTed to an aiohttp server
  (its URL is the application secret VOICEMAIL_WEBHOOK_URL, put in the store before the start);
* 900 `ringgroup`: users 101 and 102 ring at once, the first to answer gets the call and the other
  stops ringing; a caller who hangs up stops both; with nobody registered the caller hears a message.

Callers send baresip's 440 Hz sine; callees send a 1 kHz tone from a file, so what each side heard
tells whose audio it was. Every test is bounded (pytest-timeout 60 s), listens on 127.0.0.1 only
and stops every process it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import miniaudio
import numpy as np
import numpy.typing as npt
import pytest
from aiohttp import web
from baresip_helpers import BARESIP, BaresipClient, account_line, running_baresip, sine_wav
from daemon_helpers import EXAMPLE_VOXFILES, HOST, Daemon, free_port, read_text, running_daemon, wait_until
from sip_helpers import sim_user_password, store_lines
from test_media_interop import RATE, read_wav

from appliance import voxfiles
from appliance.engine.engine import check_script
from appliance.store.catalog import Catalog
from appliance.store.db import Database
from appliance.store.secrets import SecretStore

pytestmark = [pytest.mark.skipif(BARESIP is None, reason="needs baresip-core"), pytest.mark.timeout(60)]

ENDED = "engine: session ended: Normal termination"
CALLEE_HZ = 1000  # what the callee phones send (the callers send baresip's 440 Hz sine)
PASSWORDS = {"101": "pw-101-secret", "102": "pw-102-secret"}


# Helpers


def all_log_lines(daemon: Daemon) -> list[str]:
    """What every session logged, session by session, without the time stamps."""
    folder = daemon.sessions_log_dir
    paths = sorted(folder.glob("*.log"), key=lambda p: int(p.stem)) if folder.is_dir() else []
    return [line.split(" ", 2)[2] for path in paths for line in read_text(path).splitlines() if line.count(" ") >= 2]


def logged(daemon: Daemon, line: str, timeout: float = 15.0) -> None:
    assert wait_until(lambda: line in all_log_lines(daemon), timeout), (line, all_log_lines(daemon))


@contextlib.contextmanager
def example_box(tmp_path: Path, users: Sequence[str] = (), secrets: Mapping[str, str] | None = None) -> Iterator[
        Daemon]:
    """The daemon running the shipped example folder, with local users `users` and application secrets."""
    data_dir = tmp_path / "data"
    with store_lines(data_dir) as lines:
        for name in users:
            lines.add_user(name, PASSWORDS[name])
    if secrets:
        # The application exists once the folder is loaded: load it here first (the daemon loads it
        # again at start, unchanged) so the secrets have an application to belong to.
        db = Database(data_dir / "voxgate.db")
        try:
            catalog = Catalog(db, check_script)
            voxfiles.load(EXAMPLE_VOXFILES, catalog)
            store = SecretStore(db)
            for name, value in secrets.items():
                store.put(catalog.application(name="demo").id, name, value)
        finally:
            db.close()
    with running_daemon(data_dir, voxfiles=EXAMPLE_VOXFILES) as daemon:
        yield daemon


@contextlib.contextmanager
def phone(tmp_path: Path, daemon: Daemon, user: str, *, answermode: str = "auto",
          callee_tone: bool = False) -> Iterator[BaresipClient]:
    """baresip registered as `user` (100 is the simulated user), recording what it hears."""
    password = sim_user_password(daemon) if user == "100" else PASSWORDS[user]
    root = tmp_path / f"phone-{user}"
    root.mkdir()
    source = sine_wav(tmp_path / f"tone-{user}.wav", CALLEE_HZ) if callee_tone else None
    account = account_line(daemon.sip_port, password, user=user, answermode=answermode)
    with running_baresip(root, account, source=source, record=True) as client:
        client.wait_event("REGISTER_OK")
        yield client


def dial(caller: BaresipClient, daemon: Daemon, number: str) -> None:
    assert caller.command("dial", f"sip:{number}@{HOST}:{daemon.sip_port}")["ok"]
    caller.wait_event("CALL_ESTABLISHED")


def hang_up(client: BaresipClient) -> None:
    assert client.command("hangup")["ok"]
    client.wait_event("CALL_CLOSED")


def heard(client: BaresipClient) -> npt.NDArray[np.float64]:
    """What the phone heard in its (only) call."""
    dumps = sorted(client.root.glob("dump-*-dec.wav"))
    assert len(dumps) == 1, dumps
    return read_wav(dumps[0])


def envelope(audio: npt.NDArray[np.float64], ms: int = 20) -> npt.NDArray[np.float64]:
    size = RATE * ms // 1000
    frames = audio[: len(audio) // size * size].reshape(-1, size)
    level: npt.NDArray[np.float64] = np.sqrt(np.mean(frames ** 2, axis=1))
    return level


def peak_hz(audio: npt.NDArray[np.float64]) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / RATE)[np.argmax(spectrum)])


def tail(audio: npt.NDArray[np.float64], seconds: float = 2.0, skip: float = 0.5) -> npt.NDArray[np.float64]:
    """The last `seconds` before the last `skip` seconds (the end of a call may be cut short)."""
    end = len(audio) - int(skip * RATE)
    return audio[max(0, end - int(seconds * RATE)): end]


def assert_hears(audio: npt.NDArray[np.float64], hz: int, what: str) -> None:
    level = float(np.sqrt(np.mean(audio ** 2)))
    peak = peak_hz(audio)
    print(f"\n{what}: {len(audio) / RATE:.1f} s, peak {peak:.0f} Hz, RMS {level:.0f}")
    assert len(audio) >= RATE, what
    assert abs(peak - hz) < 5, (what, peak)
    assert level > 1000, (what, level)


def speech_seconds(audio: npt.NDArray[np.float64]) -> float:
    return float((envelope(audio) > 300).sum() * 0.02)


def gaps(audio: npt.NDArray[np.float64], min_s: float) -> list[float]:
    """The silences of at least `min_s` seconds between sounds, in seconds."""
    loud = np.flatnonzero(envelope(audio) > 300)
    if len(loud) < 2:
        return []
    steps = np.diff(loud) * 0.02
    return [float(s) for s in steps if s >= min_s]


@contextlib.contextmanager
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An aiohttp server on 127.0.0.1 (its own thread and loop) taking POST /voicemail; what it got."""
    received: list[dict[str, Any]] = []

    async def voicemail(request: web.Request) -> web.Response:
        received.append({"content_type": request.content_type, "json": await request.json()})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/voicemail", voicemail)
    runner = web.AppRunner(app, access_log=None)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook", daemon=True)
    thread.start()
    port = free_port()
    try:
        asyncio.run_coroutine_threadsafe(runner.setup(), loop).result(10)
        asyncio.run_coroutine_threadsafe(web.TCPSite(runner, HOST, port).start(), loop).result(10)
        yield f"http://{HOST}:{port}/voicemail", received
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# ivr (500)


def test_ivr_key_1_plays_beeps_then_says_goodbye_and_hangs_up(tmp_path: Path) -> None:
    with example_box(tmp_path) as daemon, phone(tmp_path, daemon, "100") as caller:
        dial(caller, daemon, "500")
        logged(daemon, "ivr: menu 1")
        time.sleep(2.0)  # some of the menu is heard; the key interrupts it
        caller.keys("1")
        caller.wait_event("CALL_CLOSED", timeout=20)  # the box hangs up after the beeps and the goodbye
        logged(daemon, ENDED)
        assert all_log_lines(daemon) == [
            "ivr: call from 100 answered", "ivr: menu 1", "ivr: key 1", "ivr: call ended", ENDED,
        ], all_log_lines(daemon)
    audio = heard(caller)
    # 100 ms windows loud and at 1 kHz: the beeps are on for 1.5 of their 3 seconds.
    windows = audio[: len(audio) // 800 * 800].reshape(-1, 800)
    beeping = [i for i, w in enumerate(windows) if np.sqrt(np.mean(w ** 2)) > 1000 and abs(peak_hz(w) - 1000) < 15]
    print(f"\nheard {len(audio) / RATE:.1f} s; 1 kHz in {len(beeping)} windows of 100 ms; "
          f"speech before {speech_seconds(audio[: beeping[0] * 800]) if beeping else 0:.1f} s")
    assert 12 <= len(beeping) <= 22, beeping  # edges: a window half in a beep may count
    assert speech_seconds(audio[: beeping[0] * 800]) > 1.0  # the menu, before the beeps
    assert speech_seconds(audio[beeping[-1] * 800 + 800:]) > 0.3  # "Goodbye", after them


def test_ivr_invalid_key_and_silence_repeat_the_menu_then_hang_up(tmp_path: Path) -> None:
    with example_box(tmp_path) as daemon, phone(tmp_path, daemon, "100") as caller:
        dial(caller, daemon, "500")
        logged(daemon, "ivr: menu 1")
        time.sleep(1.0)
        caller.keys("9")
        caller.wait_event("CALL_CLOSED", timeout=45)
        logged(daemon, ENDED)
        assert all_log_lines(daemon) == [
            "ivr: call from 100 answered", "ivr: menu 1", "ivr: key 9", "ivr: menu 2", "ivr: no key",
            "ivr: menu 3", "ivr: no key", "ivr: call ended", ENDED,
        ], all_log_lines(daemon)
    audio = heard(caller)
    silences = gaps(audio, 3.0)
    print(f"\nheard {len(audio) / RATE:.1f} s, speech {speech_seconds(audio):.1f} s, long silences {silences}")
    assert len(silences) == 2 and all(4.5 <= s <= 6.5 for s in silences), silences  # NO_INPUT_SECONDS = 5
    assert speech_seconds(audio) > 6.0  # three menus, "not a valid choice" and the goodbye


def test_ivr_key_2_connects_the_caller_with_the_operator(tmp_path: Path) -> None:
    with (example_box(tmp_path, users=["101"]) as daemon, phone(tmp_path, daemon, "100") as caller,
          phone(tmp_path, daemon, "101", callee_tone=True) as operator):
        dial(caller, daemon, "500")
        logged(daemon, "ivr: menu 1")
        caller.keys("2")
        incoming = operator.wait_event("CALL_ESTABLISHED", timeout=15)
        assert str(incoming.get("peeruri", "")).startswith("sip:100@"), incoming
        logged(daemon, "ivr: operator 101 answered")
        time.sleep(3.0)
        hang_up(caller)
        operator.wait_event("CALL_CLOSED")
        logged(daemon, ENDED)
        lines = all_log_lines(daemon)
        assert lines[:4] == ["ivr: call from 100 answered", "ivr: menu 1", "ivr: key 2", "ivr: operator 101 answered"]
    assert_hears(tail(heard(operator)), 440, "the operator hears the caller")
    assert_hears(tail(heard(caller)), CALLEE_HZ, "the caller hears the operator")


# forward (6 + user)


def test_forward_bridges_the_caller_with_the_dialled_user(tmp_path: Path) -> None:
    with (example_box(tmp_path, users=["101"]) as daemon, phone(tmp_path, daemon, "100") as caller,
          phone(tmp_path, daemon, "101", callee_tone=True) as callee):
        dial(caller, daemon, "6101")
        established = callee.wait_event("CALL_ESTABLISHED")
        assert established["direction"] == "incoming" and str(established["peeruri"]).startswith("sip:100@"), \
            established
        logged(daemon, "forward: 100 and 101 connected")
        time.sleep(3.0)
        hang_up(caller)
        callee.wait_event("CALL_CLOSED")
        logged(daemon, ENDED)
        assert all_log_lines(daemon) == [
            "forward: 100 -> user 101", "forward: 100 and 101 connected", "forward: call ended", ENDED,
        ], all_log_lines(daemon)
    assert_hears(tail(heard(callee)), 440, "the callee hears the caller")
    assert_hears(tail(heard(caller)), CALLEE_HZ, "the caller hears the callee")


def test_forward_to_a_user_who_is_not_registered_fails_the_call(tmp_path: Path) -> None:
    with example_box(tmp_path) as daemon, phone(tmp_path, daemon, "100") as caller:
        assert caller.command("dial", f"sip:6101@{HOST}:{daemon.sip_port}")["ok"]
        closed = caller.wait_event("CALL_CLOSED")
        assert "CALL_ESTABLISHED" not in caller.event_types()
        logged(daemon, ENDED)
        lines = [line for line in all_log_lines(daemon) if not line.startswith("engine: call ")]
        assert lines == ["forward: 100 -> user 101", "forward: user 101 failed: 480 Temporarily Unavailable",
                         "forward: call ended", ENDED], lines
        assert "480" in str(closed.get("param")), closed  # the callee's failure, passed on to the caller


# conference (700, conf-main)


def enter_pin(client: BaresipClient, daemon: Daemon, keys: str, attempt: int) -> None:
    logged(daemon, f"conference: asking for the PIN, try {attempt}")
    client.keys(keys)


def test_conference_with_a_pin_two_participants_hear_each_other(tmp_path: Path) -> None:
    with (example_box(tmp_path, users=["101"]) as daemon, phone(tmp_path, daemon, "100") as first,
          phone(tmp_path, daemon, "101", callee_tone=True) as second):
        dial(first, daemon, "700")
        enter_pin(first, daemon, "99#", 1)
        logged(daemon, "conference: wrong PIN, try 1")
        time.sleep(0.5)
        enter_pin(first, daemon, "1234#", 2)
        logged(daemon, "conference: 100 joined conf-main")
        dial(second, daemon, "700")
        assert wait_until(lambda: all_log_lines(daemon).count("conference: asking for the PIN, try 1") == 2, 10)
        second.keys("1234#")
        logged(daemon, "conference: 101 joined conf-main")
        logged(daemon, "conference room: 101 in, 2 participant(s)")
        time.sleep(3.0)
        hang_up(first)
        hang_up(second)
        assert wait_until(lambda: all_log_lines(daemon).count(ENDED) == 3, 15), all_log_lines(daemon)
        lines = all_log_lines(daemon)
        for line in ("conference room: 100 in, 1 participant(s)", "conference room: 100 left, 1 participant(s)",
                     "conference room: 101 left, 0 participant(s)"):
            assert line in lines, (line, lines)
    assert_hears(tail(heard(first), skip=1.0), CALLEE_HZ, "the first participant hears the second")
    assert_hears(tail(heard(second), skip=1.0), 440, "the second participant hears the first")


def test_conference_three_wrong_pins_hang_up(tmp_path: Path) -> None:
    with example_box(tmp_path) as daemon, phone(tmp_path, daemon, "100") as caller:
        dial(caller, daemon, "700")
        for attempt in (1, 2, 3):
            enter_pin(caller, daemon, "0#", attempt)
            logged(daemon, f"conference: wrong PIN, try {attempt}")
        caller.wait_event("CALL_CLOSED", timeout=15)
        logged(daemon, ENDED)
        assert not any("joined" in line for line in all_log_lines(daemon))


def test_conference_room_refuses_a_direct_call_without_the_pin(tmp_path: Path) -> None:
    with example_box(tmp_path) as daemon, phone(tmp_path, daemon, "100") as caller:
        assert caller.command("dial", f"sip:conf-main@{HOST}:{daemon.sip_port}")["ok"]
        closed = caller.wait_event("CALL_CLOSED")
        assert "CALL_ESTABLISHED" not in caller.event_types()
        logged(daemon, "conference room: refused 100 (no PIN from the lobby)")
        print(f"\nthe caller got: {closed.get('param')}")


# voicemail (800)


def test_voicemail_records_the_message_and_posts_a_notification(tmp_path: Path) -> None:
    with (webhook_server() as (url, received),
          example_box(tmp_path, secrets={"VOICEMAIL_WEBHOOK_URL": url}) as daemon,
          phone(tmp_path, daemon, "100") as caller):
        dial(caller, daemon, "800")
        assert wait_until(lambda: any(line.startswith("voicemail: recording to ")
                                      for line in all_log_lines(daemon)), 20), all_log_lines(daemon)
        time.sleep(3.0)  # the message: baresip's 440 Hz
        hang_up(caller)
        assert wait_until(lambda: len(received) == 1, 10), (received, all_log_lines(daemon))
        logged(daemon, ENDED)
        lines = all_log_lines(daemon)
        assert "voicemail: notified " + url + ": 200" in lines, lines
        note = received[0]
        assert note["content_type"] == "application/json", note
        body = note["json"]
        print(f"\nnotification: {body}")
        assert body["event"] == "voicemail" and body["callerId"] == "100" and body["destination"] == "800", body
        assert isinstance(body["duration"], (int, float)) and 2 <= body["duration"] <= 5, body
        record_url = str(body["recordingUrl"])
        assert record_url.startswith(daemon.base_url + "/records/") and record_url.endswith(".mp3"), body
        assert f"voicemail: message of {body['duration']} s at {record_url}" in lines, lines
        with urllib.request.urlopen(record_url, timeout=10) as response:
            data = response.read()
        assert (daemon.data_dir / "records" / record_url.rsplit("/", 1)[1]).is_file()
    decoded = miniaudio.decode(data, nchannels=1, sample_rate=RATE)
    audio = np.asarray(decoded.samples, dtype=np.int16).astype(np.float64)
    seconds = len(audio) / RATE
    print(f"recording {seconds:.2f} s (reported {body['duration']} s)")
    assert abs(seconds - float(body["duration"])) <= 1.0
    assert_hears(audio[RATE // 2: -RATE // 2], 440, "the recording holds the caller's message")


# ringgroup (900)


def test_ringgroup_the_first_member_to_answer_gets_the_call(tmp_path: Path) -> None:
    with (example_box(tmp_path, users=["101", "102"]) as daemon, phone(tmp_path, daemon, "100") as caller,
          phone(tmp_path, daemon, "101", answermode="manual") as slow,
          phone(tmp_path, daemon, "102", answermode="manual", callee_tone=True) as quick):
        assert caller.command("dial", f"sip:900@{HOST}:{daemon.sip_port}")["ok"]
        slow.wait_event("CALL_INCOMING")
        quick.wait_event("CALL_INCOMING")
        assert quick.command("accept")["ok"]
        quick.wait_event("CALL_ESTABLISHED")
        caller.wait_event("CALL_ESTABLISHED")
        slow.wait_event("CALL_CLOSED")  # it stops ringing
        assert "CALL_ESTABLISHED" not in slow.event_types()
        logged(daemon, "ringgroup: 102 answered")
        time.sleep(3.0)
        hang_up(quick)
        caller.wait_event("CALL_CLOSED")
        logged(daemon, ENDED)
        lines = all_log_lines(daemon)
        assert lines[:3] == ["ringgroup: 100 calls 101, 102", "ringgroup: 102 answered", "ringgroup: stop ringing 101"]
        assert "ringgroup: 102 hung up" in lines, lines
    assert_hears(tail(heard(quick)), 440, "the member who answered hears the caller")
    assert_hears(tail(heard(caller)), CALLEE_HZ, "the caller hears the member")


def test_ringgroup_a_caller_who_hangs_up_stops_every_phone(tmp_path: Path) -> None:
    with (example_box(tmp_path, users=["101", "102"]) as daemon, phone(tmp_path, daemon, "100") as caller,
          phone(tmp_path, daemon, "101", answermode="manual") as first,
          phone(tmp_path, daemon, "102", answermode="manual") as second):
        assert caller.command("dial", f"sip:900@{HOST}:{daemon.sip_port}")["ok"]
        first.wait_event("CALL_INCOMING")
        second.wait_event("CALL_INCOMING")
        time.sleep(1.0)
        assert caller.command("hangup")["ok"]
        first.wait_event("CALL_CLOSED")
        second.wait_event("CALL_CLOSED")
        logged(daemon, ENDED)
        assert all_log_lines(daemon) == ["ringgroup: 100 calls 101, 102", "ringgroup: call ended", ENDED], \
            all_log_lines(daemon)


def test_ringgroup_with_nobody_reachable_the_caller_hears_a_message(tmp_path: Path) -> None:
    with example_box(tmp_path, users=["101", "102"]) as daemon, phone(tmp_path, daemon, "100") as caller:
        assert caller.command("dial", f"sip:900@{HOST}:{daemon.sip_port}")["ok"]  # 101 and 102 not registered
        caller.wait_event("CALL_ESTABLISHED")
        caller.wait_event("CALL_CLOSED", timeout=20)  # after the message, the box hangs up
        logged(daemon, ENDED)
        lines = all_log_lines(daemon)
        assert "ringgroup: nobody answered" in lines, lines
        assert sum(line.startswith("ringgroup: 10") and " failed: " in line for line in lines) == 2, lines
    said = speech_seconds(heard(caller))
    print(f"\nthe caller heard {said:.1f} s of speech")
    assert said > 2.0
