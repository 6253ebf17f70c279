"""Players heard by a real phone: baresip calls in, the scenario says a sentence, then plays a
ToneScript; baresip records what it hears (sndfile) and the test measures it: speech first (of the
length the scenario was told in PlaybackStarted), then 1 kHz on for 0.5 s and off for 0.5 s."""

from __future__ import annotations

import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from baresip_helpers import BARESIP, account_line, call_box, running_baresip
from daemon_helpers import running_daemon, wait_until
from sip_helpers import log_lines, sim_user_password, voxfiles
from test_media_interop import RATE, read_wav

pytestmark = pytest.mark.skipif(BARESIP is None, reason="needs baresip-core")

SAY_THEN_TONE = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => {
    call.say("Welcome to the appliance. This sentence is spoken offline.", {voice: VoiceList.Amazon.en_US_Joanna});
  });
  call.addEventListener(CallEvents.PlaybackReady, () => Logger.write("ready"));
  call.addEventListener(CallEvents.PlaybackStarted, (p) => Logger.write("started " + p.duration));
  call.addEventListener(CallEvents.PlaybackFinished, (p) => {
    Logger.write("finished" + (p.error ? " " + p.error : ""));
    const tone = VoxEngine.createToneScriptPlayer("1000@-10;*(.5/.5/1)");
    tone.addEventListener(PlayerEvents.Started, () => Logger.write("tone started"));
    tone.sendMediaTo(call);
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.answer();
});
"""


def envelope(audio: npt.NDArray[np.float64], ms: int = 20) -> npt.NDArray[np.float64]:
    """RMS per `ms` of audio."""
    size = RATE * ms // 1000
    frames = audio[: len(audio) // size * size].reshape(-1, size)
    level: npt.NDArray[np.float64] = np.sqrt(np.mean(frames ** 2, axis=1))
    return level


def test_say_then_a_tone_script_reach_the_phone(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", SAY_THEN_TONE)) as daemon:
        account = account_line(daemon.sip_port, sim_user_password(daemon))
        with running_baresip(tmp_path / "baresip", account, record=True) as phone:
            call_box(phone, daemon.sip_port)
            assert wait_until(lambda: "tone started" in log_lines(daemon), 20), log_lines(daemon)
            time.sleep(2.5)
            assert phone.command("hangup")["ok"]
            phone.wait_event("CALL_CLOSED")
        lines = log_lines(daemon)
    assert lines[:3][0] == "ready" and lines[1].startswith("started ") and lines[2] == "finished", lines
    spoken_ms = int(lines[1].split()[1])
    heard = read_wav(sorted((tmp_path / "baresip").glob("dump-*-dec.wav"))[0])
    level = envelope(heard)
    loud = level > 300
    first = int(np.argmax(loud))
    # Speech: from the first sound, about as long as the prompt said (pauses between words allowed).
    tone_at = first + spoken_ms // 20
    speech = heard[first * 160: tone_at * 160]
    spectrum = np.abs(np.fft.rfft(speech))
    bins = np.fft.rfftfreq(len(speech), 1 / RATE)
    voice_band = spectrum[(bins > 200) & (bins < 3400)].sum() / spectrum.sum()
    print(f"\nspeech {spoken_ms} ms from {first * 20} ms, voice band share {voice_band:.2f}, "
          f"loud ticks {int(loud[first:tone_at].sum())} of {tone_at - first}")
    assert 1500 < spoken_ms < 8000
    assert loud[first:tone_at].mean() > 0.5 and voice_band > 0.8
    # Then the tone: 1 kHz, on 0.5 s / off 0.5 s.
    after = heard[(tone_at + 5) * 160:]
    on = envelope(after) > 1000
    edges = np.flatnonzero(np.diff(on.astype(int)))
    runs = np.diff(edges) * 20
    print(f"tone on/off runs (ms): {runs[:6].tolist()}")
    assert len(runs) >= 2 and all(abs(r - 500) <= 40 for r in runs[:3]), runs
    tone = after[: RATE * 2]
    peak = np.fft.rfftfreq(len(tone), 1 / RATE)[np.argmax(np.abs(np.fft.rfft(tone)))]
    assert abs(peak - 1000) < 5, peak


RECORD = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => {
    call.record({stereo: true, lossless: true});
    call.say("This call is recorded. One two three four five six seven.");
  });
  call.addEventListener(CallEvents.RecordStarted, (r) => Logger.write("record started " + r.url));
  call.addEventListener(CallEvents.RecordStopped, (r) => {
    Logger.write("record stopped " + r.duration);
    VoxEngine.terminate();
  });
  call.answer();
});
"""


def test_a_stereo_call_recording_keeps_each_side_on_its_channel(tmp_path: Path) -> None:
    """baresip says a 440 Hz sine, the box says speech: right channel the sine, left the speech."""
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", RECORD)) as daemon:
        account = account_line(daemon.sip_port, sim_user_password(daemon))
        with running_baresip(tmp_path / "baresip", account) as phone:
            call_box(phone, daemon.sip_port)
            time.sleep(4.0)
            assert phone.command("hangup")["ok"]
            phone.wait_event("CALL_CLOSED")
        assert wait_until(lambda: any(line.startswith("record stopped") for line in log_lines(daemon)), 10), (
            log_lines(daemon), daemon.stderr_text()[-3000:])
        lines = log_lines(daemon)
        url = next(line.split()[2] for line in lines if line.startswith("record started "))
        duration = int(next(line.split()[2] for line in lines if line.startswith("record stopped ")))
        assert url.startswith(daemon.base_url + "/records/") and url.endswith(".wav"), url
        target = tmp_path / "record.wav"
        with urllib.request.urlopen(url, timeout=10) as response:
            target.write_bytes(response.read())
    with wave.open(str(target), "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).reshape(-1, 2).astype(np.float64)
    seconds = len(audio) / RATE
    left, right = audio[:, 0], audio[:, 1]
    bins = np.fft.rfftfreq(len(right), 1 / RATE)
    right_peak = bins[np.argmax(np.abs(np.fft.rfft(right)))]
    at_440 = np.argmin(np.abs(bins - 440))
    left_spectrum = np.abs(np.fft.rfft(left))
    print(f"\nrecording {seconds:.2f} s (reported {duration} s); right peak {right_peak:.0f} Hz; "
          f"left 440 Hz share {left_spectrum[at_440 - 2:at_440 + 3].sum() / left_spectrum.sum():.4f}")
    assert 3.0 < seconds < 6.0 and abs(seconds - duration) <= 1
    assert abs(right_peak - 440) < 3  # what the phone said
    assert envelope(left).max() > 1000 and left_spectrum[at_440 - 2:at_440 + 3].sum() < 0.05 * left_spectrum.sum()
