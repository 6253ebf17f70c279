"""Audio through the box with real peers: baresip -> box -> sipp echoing RTP -> box -> baresip.

baresip (Debian baresip-core) registers as user 100 and calls the box, sending espeak-ng speech
from a file (`aufile`) and recording what it sends and what it hears (`sndfile`). The scenario
calls a sipp UAS that echoes RTP back (`-rtp_echo`) and bridges the two calls with
`VoxEngine.sendMediaBetween`. What baresip heard must be what it sent, delayed: in each half second
of speech the test finds the delay by cross-correlation (between baresip's two recordings, which
start when each direction's first audio does) and measures the correlation there and the level.
The first second is left out while the jitter buffers settle; a window in which one of them steps
(a tick dropped or added, as a busy machine can make it) correlates less and is allowed now and then.
"""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr
from baresip_helpers import BARESIP, account_line, call_box, running_baresip
from daemon_helpers import running_daemon, wait_until
from sip_helpers import SIPP, log_lines, sim_user_password, sipp_in_background, stop_pid, voxfiles

pytestmark = pytest.mark.skipif(BARESIP is None or SIPP is None, reason="needs baresip-core and sip-tester")

RATE = 8000
MAX_DELAY_S = 0.4  # two jitter buffers, baresip's own, sipp's echo: well under this on loopback
MIN_CORRELATION = 0.99  # G.711 re-encoded by the box is close to bit-exact ...
CLEAN_SHARE = 0.8  # ... in most windows: one that holds a jitter buffer step (a tick dropped or added
MIN_STEP_CORRELATION = 0.7  # when the machine is busy) correlates less, but not much less
MAX_LEVEL_DB = 1.0
MAX_DELAY_SPREAD_S = 0.041  # over the call the delay may change by a jitter buffer step or two (20 ms each)
WINDOW = RATE // 2
SETTLE = RATE  # samples of the start left out

BRIDGE = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  const echo = VoxEngine.callSIP("sip:echo@127.0.0.1:%(echo_port)d");
  echo.addEventListener(CallEvents.Connected, () => {
    Logger.write("echo connected");
    call.answer();
  });
  echo.addEventListener(CallEvents.Failed, (f) => { Logger.write("echo failed " + f.code); VoxEngine.terminate(); });
  VoxEngine.sendMediaBetween(call, echo);
  call.addEventListener(CallEvents.Connected, () => Logger.write("caller connected"));
  call.addEventListener(CallEvents.Disconnected, () => { echo.hangup(); VoxEngine.terminate(); });
});
"""


def speech_wav(path: Path) -> npt.NDArray[np.int16]:
    """A few seconds of espeak-ng speech at 8 kHz mono, with silence around it, written to `path`."""
    text = "Seven four one. The quick brown fox jumps over the lazy dog. Please hold the line."
    raw = subprocess.run(["espeak-ng", "-v", "en", "-s", "160", "--stdout", text], capture_output=True,
                         timeout=30, check=True).stdout
    speech = np.frombuffer(raw[44:], dtype=np.int16).astype(np.float32)  # 22050 Hz, 16-bit mono
    narrow = soxr.resample(speech, 22050, RATE)
    pad = np.zeros(RATE // 2, dtype=np.float32)
    audio = np.clip(np.concatenate((pad, narrow, pad)), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.tobytes())
    return audio


def read_wav(path: Path) -> npt.NDArray[np.float64]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getframerate() == RATE and wav.getnchannels() == 1, (wav.getframerate(), wav.getnchannels())
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16).astype(np.float64)


def windows(sent: npt.NDArray[np.float64], heard: npt.NDArray[np.float64]) -> list[tuple[int, float, float]]:
    """For each half second of speech in `sent` after the first second: (delay in samples of `heard`
    behind it, normalised correlation at that delay, level of `heard` against `sent` in dB)."""
    reach = int(MAX_DELAY_S * RATE)
    found = []
    for start in range(SETTLE, len(sent) - WINDOW, WINDOW):
        a = sent[start:start + WINDOW]
        b = heard[start:start + WINDOW + reach]
        if np.sqrt(np.mean(a ** 2)) < 300 or len(b) < WINDOW + reach:
            continue  # a pause, or past the end of what was heard
        size = 1 << int(np.ceil(np.log2(len(b) + WINDOW)))
        xcorr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: reach + 1]
        lag = int(np.argmax(xcorr))
        c = b[lag:lag + WINDOW]
        correlation = float(np.dot(a, c) / np.sqrt(np.dot(a, a) * np.dot(c, c)))
        found.append((lag, correlation, float(10 * np.log10(np.mean(c ** 2) / np.mean(a ** 2)))))
    return found


@pytest.mark.parametrize("media", ["RTP", "SRTP"])
def test_speech_comes_back_through_a_bridged_echo(tmp_path: Path, media: str) -> None:
    source = tmp_path / "speech.wav"
    played = speech_wav(source)
    (tmp_path / "sipp").mkdir()
    echo_port = 45060
    echo = sipp_in_background("-sn", "uas", "-rtp_echo", "-p", str(echo_port), "-mp", "45070", "-m", "1",
                              cwd=tmp_path / "sipp")
    try:
        script = BRIDGE % {"echo_port": echo_port}
        with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", script)) as daemon:
            account = account_line(daemon.sip_port, sim_user_password(daemon))
            if media == "SRTP":  # SDES keys in the SDP (RTP/SAVP), encrypted both ways; sipp's side stays plain
                account += ";mediaenc=srtp-mand"
            with running_baresip(tmp_path / "baresip", account, source=source, record=True) as phone:
                call_box(phone, daemon.sip_port)
                if media == "SRTP":
                    assert "RTP/SAVP" in phone.output() and "a=crypto:" in phone.output()
                assert wait_until(lambda: "caller connected" in log_lines(daemon), 5), log_lines(daemon)
                time.sleep(len(played) / RATE + MAX_DELAY_S + 0.5)
                assert phone.command("hangup")["ok"]
                phone.wait_event("CALL_CLOSED")
            assert wait_until(lambda: "session ended" in daemon.stderr_text() or
                              any("session ended" in line for line in log_lines(daemon)), 5)
    finally:
        stop_pid(echo)
    sent_files = sorted((tmp_path / "baresip").glob("dump-*-enc.wav"))
    heard_files = sorted((tmp_path / "baresip").glob("dump-*-dec.wav"))
    assert sent_files and heard_files, list((tmp_path / "baresip").iterdir())
    found = windows(read_wav(sent_files[0]), read_wav(heard_files[0]))
    lags = [lag / RATE for lag, _, _ in found]
    correlations = [c for _, c, _ in found]
    levels = [level for _, _, level in found]
    print(f"\nbaresip ({media}) -> box -> sipp echo -> box -> baresip, {len(found)} windows of speech: "
          f"delay {min(lags) * 1000:.0f}-{max(lags) * 1000:.0f} ms, correlation min {min(correlations):.4f} "
          f"median {np.median(correlations):.4f}, level {min(levels):+.2f}..{max(levels):+.2f} dB")
    assert len(found) >= 6, found  # most of the speech came back
    assert max(lags) < MAX_DELAY_S and max(lags) - min(lags) <= MAX_DELAY_SPREAD_S, lags
    assert sum(c > MIN_CORRELATION for c in correlations) >= CLEAN_SHARE * len(correlations), correlations
    assert min(correlations) > MIN_STEP_CORRELATION, correlations
    assert float(np.median(levels)) < MAX_LEVEL_DB and max(abs(level) for level in levels) < 3 * MAX_LEVEL_DB, levels
