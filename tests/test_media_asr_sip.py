"""Speech recognition in a scenario on a real call: baresip says "yes" (espeak-ng from a file), the
scenario's ASR with the yes/no grammar hears it; a language without a local model gives ASR.Error."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr
from baresip_helpers import BARESIP, account_line, call_box, running_baresip
from daemon_helpers import running_daemon, wait_until
from sip_helpers import log_lines, sim_user_password, voxfiles

pytestmark = pytest.mark.skipif(BARESIP is None, reason="needs baresip-core")

RATE = 8000

LISTEN = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => {
    const german = VoxEngine.createASR({profile: ASRProfileList.Google.de_DE});
    german.addEventListener(ASREvents.ASRError, (r) => Logger.write("german: " + r.error));
    const asr = VoxEngine.createASR({profile: ASRProfileList.Google.en_US, request: {grammar: "yesno"}});
    for (const name of ["Started", "CaptureStarted", "SpeechCaptured"]) {
      asr.addEventListener(ASREvents[name], () => Logger.write(name));
    }
    asr.addEventListener(ASREvents.Result, (r) => {
      Logger.write("result " + r.text);
      if (r.text === "yes") call.hangup();  // a click on a busy machine may be heard as an empty utterance first
    });
    call.sendMediaTo(asr);
  });
  call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  call.answer();
});
"""


def spoken(path: Path, text: str) -> None:
    raw = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "--stdout", text], capture_output=True,
                         timeout=30, check=True).stdout
    speech = soxr.resample(np.frombuffer(raw[44:], dtype=np.int16).astype(np.float32), 22050, RATE)
    pad = np.zeros(RATE, dtype=np.float32)
    audio = np.clip(np.concatenate((pad, speech, pad, pad)), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(audio.tobytes())


def test_a_caller_saying_yes_is_recognised(tmp_path: Path) -> None:
    source = tmp_path / "yes.wav"
    spoken(source, "yes")
    with running_daemon(tmp_path / "data", voxfiles=voxfiles(tmp_path / "vox", LISTEN)) as daemon:
        account = account_line(daemon.sip_port, sim_user_password(daemon))
        with running_baresip(tmp_path / "baresip", account, source=source) as phone:
            call_box(phone, daemon.sip_port)
            assert wait_until(lambda: "result yes" in log_lines(daemon), 15), log_lines(daemon)
            time.sleep(0.2)
        lines = log_lines(daemon)
    print("\n" + "\n".join(lines))
    assert lines[0].startswith("german: ") and "English" in lines[0]
    assert lines[1] == "Started"
    yes = lines.index("result yes")
    assert lines[yes - 2:yes] == ["CaptureStarted", "SpeechCaptured"], lines
