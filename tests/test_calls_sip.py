"""Real calls through the box with baresip phones: conferences and easyProcess forwarding, measured.

Each phone sends its own sine (an 8 kHz WAV through baresip's `aufile`) and records what it hears
(`sndfile`), so the test can tell parties apart by frequency (Hann-windowed FFT over a steady 2 s):

* a local conference: the scenario (started over the HTTP API) calls three phones by URI and puts
  each into one `createConference()` with `sendMediaBetween`; every phone hears the other two at
  about the same level and not itself (N-1 mixing, reference section 4.4 and 4.7);
* a standalone conference: three registered phones call in; each session `easyProcess`es its call
  into `callConference("room")`, and the rule `room` runs the conference session (section 4.1, 4.7);
* `easyProcess` forwarding (section 4.6): phone A calls in, the scenario calls phone B by URI; B
  answers with early media (180, 183 with SDP: baresip's `answermode=early`) and accepts later: A
  gets 180/183 before its 200, then both hear each other; then A hangs up (B gets a BYE) or B hangs
  up (A gets a BYE), and the session ends. The call history holds both legs (PCMU, 200, duration).
  baresip 1.0 sends no RTP during its own early media (its encoder starts on the answer), so early
  media *audio* is tested with sipp as B: a 183 with SDP and a mu-law tone (rtp_stream) for 3 s
  before its 200, which A must hear before it is answered.

After each call the box's health (the appliance method GetHealth) shows no session, no call and no
media port or unit left. Everything is on 127.0.0.1; the daemon and every baresip are stopped by
their context managers.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from baresip_helpers import BARESIP, BaresipClient, account_line, call_box, running_baresip, sine_wav
from daemon_helpers import HOST, Daemon, create_api_key, db_rows, read_text, running_daemon, wait_until
from sip_helpers import SIPP, log_lines, running, sim_user_password, sipp_in_background, stop_pid, store_lines
from test_media_interop import RATE, read_wav

pytestmark = pytest.mark.skipif(BARESIP is None, reason="needs baresip-core")

ENDED = "engine: session ended: Normal termination"
FREQS = (450.0, 750.0, 1250.0)  # no harmonic or 2nd/3rd-order product of two of them hits the third
AMPLITUDE = 8000  # -12 dBFS each: two of them mixed stay far from clipping
STEADY_S = 4.0  # talk this long once everyone is connected
WINDOW_S = 2.0
FLOOR_FREQ = 1900.0  # nothing should be there: the noise floor
MIN_HEARD_DB = -30.0  # each other party, in dBFS (sent at -15 dBFS mean power)
MAX_SPREAD_DB = 3.0  # the two others within this of each other
MIN_SELF_GAP_DB = 30.0  # own tone at least this far below the others


# Audio


def tone_db(audio: npt.NDArray[np.float64], freq: float) -> float:
    """Mean power of the component at `freq` (within 6 Hz), in dB relative to a full-scale sine."""
    w = np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(audio * w)) ** 2
    bins = np.fft.rfftfreq(len(audio), 1 / RATE)
    band = float(spectrum[np.abs(bins - freq) <= 6].sum())
    power = 2 * band / (len(audio) * float(np.sum(w ** 2)))  # mean square of that component
    return float(10 * np.log10(max(power, 1e-12) / (32767.0 ** 2 / 2)))


def heard(phone: BaresipClient) -> npt.NDArray[np.float64]:
    """What the phone heard (its sndfile dump of decoded audio), all files of its calls in order."""
    files = sorted(phone.root.glob("dump-*-dec.wav"))
    assert files, list(phone.root.iterdir())
    return np.concatenate([read_wav(f) for f in files])


def levels(audio: npt.NDArray[np.float64], start: int, freqs: tuple[float, ...] = FREQS) -> dict[float, float]:
    window = audio[start:start + int(WINDOW_S * RATE)]
    assert len(window) == int(WINDOW_S * RATE), (len(audio), start)
    return {f: tone_db(window, f) for f in freqs}


def tail_start(audio: npt.NDArray[np.float64]) -> int:
    """The steady 2 s window that ends half a second before the recording does (before the hang-ups)."""
    return len(audio) - int((WINDOW_S + 0.5) * RATE)


def assert_hears_others(name: str, found: dict[float, float], own: float) -> None:
    others = [level for f, level in found.items() if f != own and f in FREQS]
    floor = found.get(FLOOR_FREQ)
    print(f"{name} (sends {own:.0f} Hz) hears " + ", ".join(f"{f:.0f} Hz {v:+.1f} dB" for f, v in found.items()))
    assert min(others) > MIN_HEARD_DB, (name, found)
    if floor is not None:
        assert min(others) > floor + 30, (name, found)
    assert max(others) - min(others) <= MAX_SPREAD_DB, (name, found)
    assert found[own] < min(others) - MIN_SELF_GAP_DB, (name, found)


# The box


def voxfiles_rules(root: Path, rules: list[tuple[str, str, str]]) -> Path:
    """A voxengine-ci folder: application `t` with rules (name, pattern, script), each its own scenario."""
    (root / "applications" / "t").mkdir(parents=True)
    (root / "scenarios" / "src").mkdir(parents=True)
    (root / "applications" / "t" / "application.config.json").write_text(json.dumps({"applicationName": "t"}))
    (root / "applications" / "t" / "rules.config.json").write_text(json.dumps(
        [{"ruleName": name, "rulePattern": pattern, "scenarios": [name]} for name, pattern, _ in rules]))
    for name, _, script in rules:
        (root / "scenarios" / "src" / f"{name}.voxengine.js").write_text(script)
    return root


def api(daemon: Daemon, key: str, method: str, **params: str) -> dict[str, Any]:
    data = urllib.parse.urlencode({"account_id": "1", "api_key": key, **params}).encode()
    with urllib.request.urlopen(f"{daemon.api_url}/{method}", data=data, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def health(daemon: Daemon, key: str) -> dict[str, Any]:
    result: dict[str, Any] = api(daemon, key, "GetHealth")["result"]
    return result


def idle(state: dict[str, Any]) -> bool:
    media = state["media"]
    return bool(state["sessions"] == 0 and state["session_calls"] == 0 and state["sip_calls"] == 0
                and media["ports_in_use"] == 0 and media["units"] == 0)


def assert_no_leak(daemon: Daemon, key: str) -> None:
    """After the calls and sessions ended: no session, call, media port or media unit left."""
    last: list[dict[str, Any]] = [{}]

    def check() -> bool:
        last[0] = health(daemon, key)
        return idle(last[0])

    assert wait_until(check, 10, interval=0.2), last[0]


def session_ids(daemon: Daemon) -> list[int]:
    return sorted(int(p.stem) for p in daemon.sessions_log_dir.glob("*.log"))


def all_ended(daemon: Daemon, count: int) -> bool:
    ids = session_ids(daemon)
    return len(ids) == count and all(ENDED in log_lines(daemon, i) for i in ids)


def all_logs(daemon: Daemon) -> str:
    return "\n".join(f"--- session {i}\n" + read_text(daemon.session_log(i)) for i in session_ids(daemon))


def plain_phone(user: str, answermode: str = "auto") -> str:
    """A baresip account that registers nowhere: the box reaches it by URI (callSIP)."""
    return f"<sip:{user}@{HOST}>;regint=0;answermode={answermode}"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TRACE = re.compile(r"^#\n(?:UDP|TCP) \S+ -> \S+\n(.*?)(?=^#\n(?:UDP|TCP) |\Z)", re.MULTILINE | re.DOTALL)


def sip_messages(phone: BaresipClient) -> list[str]:
    """The SIP messages in baresip's trace (`-s`), sent and received, in order."""
    return [m.group(1) for m in _TRACE.finditer(_ANSI.sub("", phone.output()))]


def invite_responses(phone: BaresipClient) -> list[str]:
    """The status lines of the responses to INVITEs in baresip's trace, in order."""
    return [m.splitlines()[0].strip() for m in sip_messages(phone)
            if m.startswith("SIP/2.0 ") and re.search(r"^CSeq: \d+ INVITE", m, re.MULTILINE)]


# 1a. Local conference: the box calls three phones


LOCAL_CONFERENCE = """
require(Modules.Conference);
const URIS = %(uris)s;
VoxEngine.addEventListener(AppEvents.Started, () => {
  const conf = VoxEngine.createConference();
  let ended = 0;
  for (const uri of URIS) {
    const call = VoxEngine.callSIP(uri, {callerid: "42"});
    call.addEventListener(CallEvents.Connected, () => {
      VoxEngine.sendMediaBetween(call, conf);
      Logger.write("joined " + uri);
    });
    const end = (text) => {
      Logger.write(text + " " + uri);
      if (++ended === URIS.length) VoxEngine.terminate();
    };
    call.addEventListener(CallEvents.Failed, (e) => end("failed " + e.code));
    call.addEventListener(CallEvents.Disconnected, () => end("left"));
  }
});
"""


def test_local_conference_mixes_n_minus_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = create_api_key(data)
    with ExitStack() as stack:
        phones = [stack.enter_context(running_baresip(
            tmp_path / f"phone{i}", plain_phone(f"p{i}"), source=sine_wav(tmp_path / f"sine{i}.wav", f),
            record=True)) for i, f in enumerate(FREQS)]
        uris = [f"sip:p{i}@{HOST}:{phone.port}" for i, phone in enumerate(phones)]
        script = LOCAL_CONFERENCE % {"uris": json.dumps(uris)}
        daemon = stack.enter_context(running_daemon(data, voxfiles=voxfiles_rules(tmp_path / "vox", [
            ("conf", ".*", script)])))
        assert api(daemon, key, "StartScenarios", rule_name="conf")["result"] == 1
        assert wait_until(lambda: sum(line.startswith("joined ") for line in log_lines(daemon)) == 3, 15), (
            log_lines(daemon), daemon.stderr_text()[-3000:])
        for phone in phones:
            phone.wait_event("CALL_ESTABLISHED")
        time.sleep(STEADY_S)
        for phone in phones:
            assert phone.command("hangup")["ok"]
        for phone in phones:
            phone.wait_event("CALL_CLOSED")
        assert wait_until(lambda: ENDED in log_lines(daemon), 10), (log_lines(daemon), daemon.stderr_text()[-3000:])
        assert_no_leak(daemon, key)
        print()
        for i, (phone, own) in enumerate(zip(phones, FREQS, strict=True)):
            audio = heard(phone)
            assert_hears_others(f"phone {i}", levels(audio, tail_start(audio), (*FREQS, FLOOR_FREQ)), own)


# 1b. Standalone conference: three phones call in, each session joins "room"


JOIN = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  Logger.write("joining " + e.callerid);
  VoxEngine.easyProcess(e.call, VoxEngine.callConference("room", e.callerid));
});
"""

ROOM = """
require(Modules.Conference);
let conf = null;
let live = 0;
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  if (conf === null) conf = VoxEngine.createConference();
  live++;
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => {
    VoxEngine.sendMediaBetween(call, conf);
    Logger.write("room joined " + e.destination + " " + e.callerid);
  });
  call.addEventListener(CallEvents.Disconnected, () => {
    Logger.write("room left " + e.callerid);
    if (--live === 0) VoxEngine.terminate();
  });
  call.answer();
});
"""


def test_standalone_conference_mixes_n_minus_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    users = {f"20{i}": f"pw-20{i}-secret" for i in range(3)}
    with store_lines(data) as lines:
        for user, password in users.items():
            lines.add_user(user, password)
    key = create_api_key(data)
    vox = voxfiles_rules(tmp_path / "vox", [("room", "room", ROOM), ("join", ".*", JOIN)])
    # Three phones on one address register and call within a second: more than the flood guard
    # allows one source by default (16 requests in 2 s), so loopback is trusted, as a proxy would be.
    config = tmp_path / "voxgate.toml"
    config.write_text('[sip]\ntrusted = ["127.0.0.1/32"]\n')
    with running_daemon(data, voxfiles=vox, extra_args=["--config", str(config)]) as daemon, \
            ExitStack() as stack:
        phones = [stack.enter_context(running_baresip(
            tmp_path / f"phone{i}", account_line(daemon.sip_port, password, user=user),
            source=sine_wav(tmp_path / f"sine{i}.wav", f), record=True))
            for i, ((user, password), f) in enumerate(zip(users.items(), FREQS, strict=True))]
        for phone in phones:
            call_box(phone, daemon.sip_port)

        def joined() -> int:
            return all_logs(daemon).count("room joined room ")

        assert wait_until(lambda: joined() == 3, 15), (all_logs(daemon), daemon.stderr_text()[-3000:])
        time.sleep(STEADY_S)
        for phone in phones:
            assert phone.command("hangup")["ok"]
        for phone in phones:
            phone.wait_event("CALL_CLOSED")
        assert wait_until(lambda: all_ended(daemon, 4), 15), (all_logs(daemon), daemon.stderr_text()[-3000:])
        assert_no_leak(daemon, key)
        print()
        for i, (phone, own) in enumerate(zip(phones, FREQS, strict=True)):
            audio = heard(phone)
            assert_hears_others(f"phone 20{i}", levels(audio, tail_start(audio), (*FREQS, FLOOR_FREQ)), own)


# 2. easyProcess forwarding with early media


FORWARD = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const out = VoxEngine.callSIP("%(b_uri)s", {callerid: e.callerid});
  for (const [name, call] of [["in", e.call], ["out", out]]) {
    for (const ev of ["Ringing", "AudioStarted", "Connected", "Disconnected", "Failed"]) {
      call.addEventListener(CallEvents[ev], () => Logger.write(name + " " + ev));
    }
  }
  VoxEngine.easyProcess(e.call, out);
});
"""

A_FREQ, B_FREQ = FREQS[0], FREQS[2]
EARLY_S = 2.5  # B's early media before it answers


@pytest.mark.parametrize("hangs_up", ["A", "B"])
def test_easy_process_forwards_early_media_talk_and_hang_up(tmp_path: Path, hangs_up: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = create_api_key(data)
    with ExitStack() as stack:
        b = stack.enter_context(running_baresip(
            tmp_path / "b", plain_phone("b", answermode="early"), source=sine_wav(tmp_path / "b.wav", B_FREQ),
            record=True))
        script = FORWARD % {"b_uri": f"sip:b@{HOST}:{b.port}"}
        daemon = stack.enter_context(running_daemon(data, voxfiles=voxfiles_rules(tmp_path / "vox", [
            ("forward", ".*", script)])))
        a = stack.enter_context(running_baresip(
            tmp_path / "a", account_line(daemon.sip_port, sim_user_password(daemon)),
            source=sine_wav(tmp_path / "a.wav", A_FREQ), record=True))
        a.wait_event("REGISTER_OK")
        assert a.command("dial", f"sip:555@{HOST}:{daemon.sip_port}")["ok"]
        # B answers with early media (183 with SDP; baresip raises no CALL_INCOMING in that mode): A must
        # get the progress and hear B's tone.
        assert wait_until(lambda: "out AudioStarted" in log_lines(daemon), 10), (
            log_lines(daemon), b.output()[-3000:])
        time.sleep(EARLY_S)
        early_responses = invite_responses(a)
        early_events = a.event_types()
        assert b.command("accept")["ok"]
        a.wait_event("CALL_ESTABLISHED")
        b.wait_event("CALL_ESTABLISHED")
        time.sleep(STEADY_S)
        hanger, other = (a, b) if hangs_up == "A" else (b, a)
        assert hanger.command("hangup")["ok"]
        hanger.wait_event("CALL_CLOSED")
        closed = other.wait_event("CALL_CLOSED")
        assert wait_until(lambda: ENDED in log_lines(daemon), 10), (log_lines(daemon), daemon.stderr_text()[-3000:])
        lines = log_lines(daemon)
        print(f"\nscenario: {lines}\nA's INVITE responses before B answered: {early_responses}\n"
              f"A's events then: {early_events}")
        # The other side got a BYE from the box (baresip: "Connection reset by peer").
        assert closed["param"] == "Connection reset by peer", closed
        other_messages = [m.splitlines()[0] for m in sip_messages(other)]
        assert any(m.startswith("BYE ") for m in other_messages), other_messages
        # A saw the progress (180 and 183 with SDP) before the 200.
        assert any(m.startswith("SIP/2.0 183") for m in early_responses), early_responses
        assert not any(m.startswith("SIP/2.0 200") for m in early_responses), early_responses
        assert any(m.startswith("SIP/2.0 200") for m in invite_responses(a)), invite_responses(a)
        assert "CALL_PROGRESS" in early_events or "CALL_RINGING" in early_events, early_events
        assert "in Ringing" not in lines and "out Ringing" in lines and "out AudioStarted" in lines, lines
        assert lines.index("out AudioStarted") < lines.index("out Connected") < lines.index("in Connected"), lines
        # The history row is written just after the log line, on the store's thread.
        ended = "SELECT 1 FROM call_sessions WHERE end_date IS NOT NULL"
        assert wait_until(lambda: bool(db_rows(daemon.db_path, ended)), 10)
        sessions = db_rows(daemon.db_path, "SELECT id, end_date FROM call_sessions")
        legs = db_rows(daemon.db_path, "SELECT incoming, kind, codec, duration, code, answer_date IS NOT NULL "
                                       "FROM call_legs WHERE session_id = 1 ORDER BY incoming")
        assert_no_leak(daemon, key)
    # Measured: each heard the other once connected. (baresip 1.0 sends no RTP in its own early media:
    # its encoder starts on the 200, so what A hears early is tested with sipp below.)
    a_heard, b_heard = heard(a), heard(b)
    a_tail = levels(a_heard, tail_start(a_heard), (A_FREQ, B_FREQ))
    b_tail = levels(b_heard, tail_start(b_heard), (A_FREQ, B_FREQ))
    print(f"A talking {a_tail}\nB talking {b_tail}")
    assert a_tail[B_FREQ] > MIN_HEARD_DB and a_tail[A_FREQ] < a_tail[B_FREQ] - MIN_SELF_GAP_DB, a_tail
    assert b_tail[A_FREQ] > MIN_HEARD_DB and b_tail[B_FREQ] < b_tail[A_FREQ] - MIN_SELF_GAP_DB, b_tail
    # The call history: both legs, PCMU, connected for the talk, normal clearing; the session closed.
    assert len(sessions) == 1 and sessions[0][1] is not None, sessions
    assert [row[:3] for row in legs] == [(0, "sip", "PCMU"), (1, "sip", "PCMU")], legs  # out by URI, in from 100
    assert all(row[3] >= STEADY_S - 1 and row[4] == 200 and row[5] == 1 for row in legs), legs


# 2b. Early media audio: sipp as B sends 183 with SDP and RTP (a tone) for a while before its 200


EARLY_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="uas with early media">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[

      SIP/2.0 183 Session Progress
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <nop>
    <action>
      <exec rtp_stream="TONE_FILE,-1,0"/>
    </action>
  </nop>
  <pause milliseconds="EARLY_MS"/>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def ulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """G.711 mu-law bytes of 16-bit linear samples."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    encoded: bytes = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()
    return encoded


def ulaw_wav(path: Path, freq: float, seconds: float = 20.0) -> Path:
    """A mu-law WAV (format 7) of one sine, the form sipp's rtp_stream sends as payload type 0."""
    t = np.arange(int(seconds * RATE)) / RATE
    payload = ulaw((AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.int16))
    header = (b"RIFF" + (36 + len(payload)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (7).to_bytes(2, "little") + (1).to_bytes(2, "little") + RATE.to_bytes(4, "little")
              + RATE.to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
              + b"data" + len(payload).to_bytes(4, "little"))
    path.write_bytes(header + payload)
    return path


EARLY_MS = 3000


@pytest.mark.skipif(SIPP is None, reason="needs sip-tester (sipp)")
def test_easy_process_forwards_early_media_audio(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = create_api_key(data)
    work = tmp_path / "sipp"
    work.mkdir()
    tone = ulaw_wav(work / "tone.wav", B_FREQ)
    (work / "early.xml").write_text(EARLY_UAS.replace("TONE_FILE", str(tone)).replace("EARLY_MS", str(EARLY_MS)))
    b_port = free_port_udp()
    uas = sipp_in_background("-sf", "early.xml", "-p", str(b_port), "-mp", str(free_port_udp()), "-m", "1",
                             "-trace_msg", cwd=work)
    try:
        script = FORWARD % {"b_uri": f"sip:b@{HOST}:{b_port}"}
        with running_daemon(data, voxfiles=voxfiles_rules(tmp_path / "vox", [("forward", ".*", script)])) as daemon:
            with running_baresip(tmp_path / "a", account_line(daemon.sip_port, sim_user_password(daemon)),
                                 source=sine_wav(tmp_path / "a.wav", A_FREQ), record=True) as a:
                a.wait_event("REGISTER_OK")
                assert a.command("dial", f"sip:555@{HOST}:{daemon.sip_port}")["ok"]
                a.wait_event("CALL_PROGRESS")
                established = a.wait_event("CALL_ESTABLISHED", timeout=EARLY_MS / 1000 + 5)
                time.sleep(1.5)
                assert a.command("hangup")["ok"]
                a.wait_event("CALL_CLOSED")
                responses = invite_responses(a)
                events = a.event_types()
            assert wait_until(lambda: ENDED in log_lines(daemon), 10), (log_lines(daemon), daemon.stderr_text()[-3000:])
            assert wait_until(lambda: not running(uas), 10), "sipp did not get its BYE"
            lines = log_lines(daemon)
            assert_no_leak(daemon, key)
    finally:
        stop_pid(uas)
    print(f"\nscenario: {lines}\nA's INVITE responses: {responses}\nA's events: {events}\n{established}")
    assert [r.split()[1] for r in responses if r.split()[1] in ("180", "183", "200")][-2:] == ["183", "200"], responses
    assert events.index("CALL_PROGRESS") < events.index("CALL_ESTABLISHED"), events
    assert "out AudioStarted" in lines and lines.index("out AudioStarted") < lines.index("in Connected"), lines
    # A's recording starts with the early media: B's tone during the 3 s before the answer.
    a_heard = heard(a)
    early = levels(a_heard, int(0.5 * RATE), (A_FREQ, B_FREQ))
    print(f"A early {early}")
    assert early[B_FREQ] > MIN_HEARD_DB and early[A_FREQ] < early[B_FREQ] - MIN_SELF_GAP_DB, early


def free_port_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])
