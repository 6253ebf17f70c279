"""Call control in the offline box (the harness's engine, virtual phones, the real media plane on a
virtual clock): the session's call rules, the call history, conferences, transfers, bad input.

After every scenario the box must be empty: no session, no media unit, no port, no live leg.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import Lines

from appliance.clock import VirtualClock
from appliance.engine.session import ScriptSource, Session
from appliance.harness import OfflineBox, offline_box
from appliance.legs.leg import LegState
from appliance.legs.virtual import Behaviour
from appliance.media.audio import RATE


@dataclass
class Run:
    box: OfflineBox
    session: Session
    lines: Lines


@contextlib.asynccontextmanager
async def box_for(tmp_path: Path, script: str, peers: dict[str, str] | None = None) -> AsyncIterator[OfflineBox]:
    behaviours = {number: Behaviour.parse(text) for number, text in (peers or {}).items()}
    async with offline_box([script], ["main.js"], VirtualClock(), behaviours, tmp_path) as box:
        yield box


async def run(tmp_path: Path, script: str, *, call: str | None = None, keys: str = "",
              peers: dict[str, str] | None = None) -> Run:
    async with box_for(tmp_path, script, peers) as box:
        lines = Lines()
        box.engine.sink = lines.sink
        session = box.start((ScriptSource("main.js", script),))
        if call is not None:
            box.call_in(session, call, keys)
        await box.drive(session, box.clock.time() + 7200)
        assert_empty(box)
        return Run(box, session, lines)


def assert_empty(box: OfflineBox) -> None:
    """Nothing half-open: no session, no unit in the media graph, no port, every phone's leg ended."""
    assert not box.engine.sessions
    assert len(box.media.plane.graph) == 0, [unit.id for unit in box.media.plane.graph.units()]
    assert box.media.plane.ports.in_use == 0
    assert all(phone.leg.state is LegState.TERMINATED for phone in box.lines.phones)


def level_db(audio: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if len(audio) else 0.0
    return float(20 * np.log10(max(rms, 1e-9) / 32768))


def tone_level_db(audio: np.ndarray, hz: float) -> float:
    """Level of one frequency (a single-bin DFT), in dBFS of a full-scale sine."""
    x = audio.astype(np.float64)
    n = np.arange(len(x))
    amplitude = 2 * abs(np.sum(x * np.exp(-2j * np.pi * hz * n / RATE))) / max(1, len(x))
    return float(20 * np.log10(max(amplitude, 1e-9) / 32768))


IVR = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  Logger.write(`alerting ${e.callerid} -> ${e.destination} ${call.state()}`);
  call.handleTones(true);
  call.addEventListener(CallEvents.Connected, () => call.say("Press one to reach sales."));
  call.addEventListener(CallEvents.ToneReceived, (t) => {
    Logger.write("tone " + t.tone + " type " + t.type);
    call.stopPlayback();
    const sales = VoxEngine.callPSTN("+15550001", e.callerid);
    sales.addEventListener(CallEvents.Ringing, () => Logger.write("sales ringing"));
    sales.addEventListener(CallEvents.Connected, () => {
      Logger.write("sales connected");
      VoxEngine.sendMediaBetween(call, sales);
      const tone = VoxEngine.createToneScriptPlayer("1000@-10;2(2/0/1)");
      tone.sendMediaTo(call);
      tone.addEventListener(PlayerEvents.PlaybackFinished, () => sales.hangup());
    });
    sales.addEventListener(CallEvents.Disconnected, (d) => { Logger.write("sales " + d.internalCode); call.hangup(); });
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.record({lossless: true});
  call.addEventListener(CallEvents.RecordStopped, (r) => Logger.write("recorded " + (r.duration > 0)));
  call.answer();
});
"""


async def test_an_ivr_heard_by_the_caller_and_its_history(tmp_path: Path) -> None:
    result = await run(tmp_path, IVR, call="100:555", keys="1")
    assert result.lines.script == [
        "alerting 555 -> 100 ALERTING", "tone 1 type 1", "sales ringing", "sales connected", "sales 200",
        "recorded true",
    ], result.lines.system
    caller = result.box.lines.phones[0]
    heard = np.concatenate(caller.media.heard)
    assert len(heard) / RATE == pytest.approx(1.0 + 0.25 + 1.0 + 2.0, abs=0.3)  # prompt, key, ringing, tone
    prompt = heard[: RATE]
    assert level_db(prompt) > -35  # speech from the first second
    assert tone_level_db(prompt, 1000) < -50
    tone = heard[-int(1.8 * RATE):]
    assert tone_level_db(tone, 1000) == pytest.approx(-13.17, abs=1.0)  # -10 dBm0: a full-scale sine is +3.17 dBm0

    history = result.box.engine.history
    legs = history.legs(result.session.id)
    assert [(leg.incoming, leg.kind, leg.caller, leg.destination, leg.code) for leg in legs] == [
        (False, "pstn", "555", "+15550001", 200), (True, "sip", "555", "100", 200)]
    assert all(leg.line == "virtual" and leg.answer_date is not None for leg in legs)
    assert legs[0].duration == 2 and legs[1].duration == 4
    records = history.records(result.session.id)
    assert len(records) == 1 and records[0].call_id is not None and records[0].duration == pytest.approx(4.25, abs=0.3)
    assert records[0].url.endswith(records[0].file_name)


RULES = """
let attempts = 0, failed = [];
VoxEngine.addEventListener(AppEvents.Started, () => {
  for (let i = 0; i < 11; i++) {
    const call = VoxEngine.callPSTN("+1555000" + i, "1");
    call.addEventListener(CallEvents.Failed, (e) => {
      failed.push(`${i}:${e.code}:${Math.round((Date.now() - t0) / 1000)}`);
      if (failed.length === 11) {
        Logger.write(failed.join(" "));
        VoxEngine.terminate();
      }
    });
  }
});
const t0 = Date.now();
"""


async def test_ten_ringing_calls_at_most_and_408_after_sixty_seconds(tmp_path: Path) -> None:
    result = await run(tmp_path, RULES, peers={f"+1555000{i}": "noanswer" for i in range(11)})
    # The 11th fails at once with 403; the ten others ring until the 60 s rule fails them with 408.
    assert result.lines.script == ["10:403:0 " + " ".join(f"{i}:408:60" for i in range(10))]


ATTEMPTS = """
let done = 0;
const codes = {};
function next(i) {
  const call = VoxEngine.callPSTN("+1555", "1");
  const end = (code) => {
    codes[code] = (codes[code] || 0) + 1;
    if (++done === 51) { Logger.write(JSON.stringify(codes)); VoxEngine.terminate(); } else next(i + 1);
  };
  call.addEventListener(CallEvents.Failed, (e) => end(e.code + " " + e.reason));
}
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => { e.call.answer(); next(0); });
"""


async def test_fifty_call_attempts_per_session_counting_the_incoming_one(tmp_path: Path) -> None:
    result = await run(tmp_path, ATTEMPTS, call="100", peers={"+1555": "busy"})
    assert result.lines.script == [
        '{"486 Busy Here":49,"403 Call limit reached (50 call attempts per session)":2}']


UNANSWERED = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const t0 = Date.now();
  e.call.addEventListener(CallEvents.Disconnected, (d) => {
    Logger.write(`disconnected ${d.internalCode} after ${Math.round((Date.now() - t0) / 1000)} s`);
  });
});
"""


async def test_an_unanswered_incoming_call_is_dropped_after_sixty_seconds(tmp_path: Path) -> None:
    result = await run(tmp_path, UNANSWERED, call="100")
    assert result.lines.script == ["disconnected 408 after 60 s"]
    assert "408" in result.lines.system[-1] or result.session.finish_reason == "Normal termination"


CONFERENCE = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  if (e.destination === "room-1") {
    Logger.write(`conference session: ${e.callerid} joins ${e.destination}`);
    const conf = globalThis.conf || (globalThis.conf = VoxEngine.createConference());
    e.call.answer();
    e.call.addEventListener(CallEvents.Connected, () => {
      VoxEngine.sendMediaBetween(e.call, conf);
      const tone = VoxEngine.createToneScriptPlayer("600@-10;3(3/0/1)");
      tone.sendMediaTo(e.call);
    });
    e.call.addEventListener(CallEvents.Disconnected, () => {
      Logger.write("conference session: left");
      VoxEngine.terminate();
    });
    return;
  }
  e.call.answer();
  const into = VoxEngine.callConference("room-1", "777", "Guest");
  into.addEventListener(CallEvents.Connected, () => {
    Logger.write(`main session: in the conference, is_conf ${into.is_conf}`);
    VoxEngine.sendMediaBetween(e.call, into);
    setTimeout(() => e.call.hangup(), 3000);
  });
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
"""


async def test_call_conference_starts_a_conference_session_heard_by_the_caller(tmp_path: Path) -> None:
    result = await run(tmp_path, CONFERENCE, call="100:555")
    assert result.lines.script == [
        "conference session: 777 joins room-1", "main session: in the conference, is_conf true",
        "conference session: left",
    ]
    heard = np.concatenate(result.box.lines.phones[0].media.heard)
    # The conference session's tone crosses both sessions to the phone.
    assert tone_level_db(heard[RATE // 2: RATE + RATE // 2], 600) == pytest.approx(-13.17, abs=1.0)


TRANSFER = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => call.transferTo({to: "sip:desk@example.org"}));
  call.addEventListener(CallEvents.TransferComplete, (t) => Logger.write("transfer complete, role " + t.role));
  call.addEventListener(CallEvents.Disconnected, () => { Logger.write("disconnected"); VoxEngine.terminate(); });
  call.answer();
});
"""


async def test_transfer_to_completes_and_the_box_leaves_the_call(tmp_path: Path) -> None:
    result = await run(tmp_path, TRANSFER, call="100")
    assert result.lines.script == ["transfer complete, role transferor", "disconnected"]


BAD_INPUT = {
    "a method on an ended call": ("""
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.addEventListener(CallEvents.Disconnected, () => {
    for (const f of [() => e.call.answer(), () => e.call.say("hi"), () => e.call.sendDigits("1"), () => e.call.record(),
                     () => e.call.startPlayback("http://127.0.0.1:9/x.mp3"), () => e.call.sendMediaTo(e.call)]) {
      try { f(); Logger.write("no error"); } catch (err) { Logger.write(err.message); }
    }
    e.call.hangup(); e.call.stopPlayback(); e.call.reject();
    Logger.write("cleanup calls are harmless");
    VoxEngine.terminate();
  });
  e.call.answer();
  e.call.hangup();
});
""", [
        "Call.answer: call leg-N has already ended (it was disconnected)",
        "Call.say: call leg-N has already ended (it was disconnected)",
        "Call.sendDigits: call leg-N has already ended (it was disconnected)",
        "Call.record: call leg-N has already ended (it was disconnected)",
        "Call.startPlayback: call leg-N has already ended (it was disconnected)",
        "Call.sendMediaTo: call leg-N has already ended (it was disconnected)",
        "cleanup calls are harmless",
    ]),
    "media to itself, wrong types, unknown values": ("""
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const c = e.call;
  c.addEventListener(CallEvents.Connected, () => {
    for (const f of [() => c.sendMediaTo(c), () => c.reject(200), () => c.answer("X-Header: 1"),
                     () => VoxEngine.callPSTN({}), () => VoxEngine.callPSTN("9".repeat(5000)),
                     () => VoxEngine.callSIP(""), () => VoxEngine.callConference(5),
                     () => VoxEngine.easyProcess(c, "not a call"), () => c.sendDigits("12x"),
                     () => c.sendInfo("nonsense", "x"), () => c.transferTo({}), () => c.ring()]) {
      try { f(); Logger.write("no error"); } catch (err) { Logger.write(err.name + ": " + err.message); }
    }
    const out = VoxEngine.callSIP("sip:nobody@example.invalid");
    try { out.answer(); } catch (err) { Logger.write(err.message); }
    out.hangup();
    c.playProgressTone("XX");
  });
  c.addEventListener(CallEvents.PlaybackFinished, (p) => { Logger.write("playback: " + p.error); c.hangup(); });
  c.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  c.answer();
});
""", [
        "Error: sendMediaTo: a media unit cannot send media to itself",
        "RangeError: Call.reject: the code must be a SIP code from 300 to 699, not 200",
        "TypeError: answer: headers must be an object of header names and values",
        'TypeError: VoxEngine.callPSTN: "[object Object]" is not a phone number',
        "RangeError: VoxEngine.callPSTN: the destination is longer than 200 characters",
        "TypeError: VoxEngine.callSIP: the destination URI is required",
        "TypeError: VoxEngine.callConference: the conference id must be a non-empty string",
        "TypeError: VoxEngine.easyProcess: call1 and call2 must be Call objects",
        'TypeError: Call.sendDigits: invalid digits "12x"',
        'TypeError: Call.sendInfo: "nonsense" is not a MIME type',
        "TypeError: Call.transferTo: parameters.to is required",
        "no error",  # ring() on an answered incoming call changes nothing
        "Call.answer: call call-N is outgoing; only incoming calls can be answered",
        "playback: no progress tones for country 'XX'; known: CA, CHN, CN, DE, DEU, ES, ESP, FR, FRA, GB, GBR, IT, "
        "ITA, NL, NLD, RU, RUS, UK, US, USA",
    ]),
}


@pytest.mark.parametrize("name", list(BAD_INPUT))
async def test_bad_input_gets_clear_errors_and_leaves_nothing_open(tmp_path: Path, name: str) -> None:
    script, expected = BAD_INPUT[name]
    result = await run(tmp_path, script, call="100")
    got = [re.sub(r"(leg|call)-\d+", r"\1-N", line) for line in result.lines.script]
    assert got == expected, result.lines.system
    assert not result.session.system_error
