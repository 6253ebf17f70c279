"""Recordings on disk, measured from the files: levels, tones, durations, crashes, full and slow disks."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import miniaudio
import numpy as np
import numpy.typing as npt
import pytest

from appliance.media import recording
from appliance.media.audio import FRAME, RATE, Frame
from appliance.media.recording import (
    DAY_S,
    Disk,
    RecordingError,
    RecordingStore,
    RecordingThread,
    RecordingWriter,
    repair_wav,
    retention_s,
    wav_header,
)

ROOT = Path(__file__).resolve().parent.parent
LEVEL_DBFS = -10.0
AMPLITUDE = 32767 * 10 ** (LEVEL_DBFS / 20)


def tone(freq: float, seconds: float) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.round(AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def frames(samples: npt.NDArray[np.int16]) -> Iterator[Frame]:
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        yield samples[i : i + FRAME]


def level_dbfs(x: npt.NDArray[Any]) -> float:
    """A sine's level as its peak relative to full scale, measured through RMS."""
    rms = float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))
    return float(20 * np.log10(rms * np.sqrt(2) / 32767))


def band_db(x: npt.NDArray[Any], freq: float) -> float:
    """Energy near `freq` in dB relative to the signal's total energy."""
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x)))) ** 2
    bins = np.fft.rfftfreq(len(x), 1 / RATE)
    near = np.abs(bins - freq) < 30
    return float(10 * np.log10(spectrum[near].sum() / spectrum.sum() + 1e-30))


def peak_hz(x: npt.NDArray[Any]) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[int(np.argmax(spectrum))])


def read_wav(path: Path) -> tuple[wave._wave_params, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        data = np.frombuffer(w.readframes(params.nframes), dtype=np.int16)
    return params, data.reshape(-1, params.nchannels) if params.nchannels > 1 else data


def decode_mp3(path: Path, channels: int) -> npt.NDArray[np.int16]:
    decoded = miniaudio.decode(path.read_bytes(), nchannels=channels, sample_rate=RATE)
    samples = np.asarray(decoded.samples, dtype=np.int16)
    return samples.reshape(-1, channels) if channels > 1 else samples


def tone_region(x: npt.NDArray[np.int16]) -> tuple[int, int]:
    """Where the tone is in decoded audio, from its envelope: MP3 adds codec delay and padding of
    silence around it (dr_mp3 reads no LAME gapless tag), which is not recorded audio."""
    env = np.convolve(np.abs(x.astype(np.float64)), np.ones(40) / 40, mode="same")
    loud = np.flatnonzero(env > env.max() / 2)
    return int(loud[0]), int(loud[-1]) + 1


def tone_span_s(x: npt.NDArray[np.int16]) -> float:
    begin, end = tone_region(x)
    return (end - begin) / RATE


def steady_part(x: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The tone without its first and last quarter second, where the codec's filters settle."""
    begin, end = tone_region(x)
    return x[begin + RATE // 4 : end - RATE // 4]


@pytest.fixture
def thread() -> Iterator[RecordingThread]:
    t = RecordingThread()
    t.start()
    yield t
    t.stop()


def record(writer: RecordingWriter, left: npt.NDArray[np.int16], right: npt.NDArray[np.int16] | None = None) -> None:
    if right is None:
        for frame in frames(left):
            writer.write(frame)
    else:
        for a, b in zip(frames(left), frames(right), strict=True):
            writer.write(a, b)
    writer.close()
    assert writer.wait_closed(5)
    assert writer.error is None


def test_mono_wav_is_bit_exact(thread: RecordingThread, tmp_path: Path) -> None:
    samples = tone(1000, 3.0)
    writer = RecordingWriter(thread, tmp_path / "mono.wav")
    record(writer, samples)
    params, data = read_wav(writer.path)
    assert (params.framerate, params.nchannels, params.sampwidth) == (RATE, 1, 2)
    assert abs(params.nframes / RATE - 3.0) <= 0.02
    assert abs(level_dbfs(data) - LEVEL_DBFS) < 0.1
    assert np.array_equal(data, samples)


def test_stereo_wav_keeps_channels_apart(thread: RecordingThread, tmp_path: Path) -> None:
    left, right = tone(500, 2.0), tone(1500, 2.0)
    writer = RecordingWriter(thread, tmp_path / "stereo.wav", "wav", 2)
    record(writer, left, right)
    params, data = read_wav(writer.path)
    assert (params.nchannels, params.framerate, params.nframes) == (2, RATE, len(left))
    assert np.array_equal(data[:, 0], left) and np.array_equal(data[:, 1], right)
    assert band_db(data[:, 0], 1500) < -60 and band_db(data[:, 1], 500) < -60
    assert peak_hz(data[:, 0]) == pytest.approx(500, abs=5) and peak_hz(data[:, 1]) == pytest.approx(1500, abs=5)


def test_mp3_tone(thread: RecordingThread, tmp_path: Path) -> None:
    samples = tone(1000, 3.0)
    writer = RecordingWriter(thread, tmp_path / "mono.mp3", "mp3")
    record(writer, samples)
    size = writer.path.stat().st_size
    decoded = decode_mp3(writer.path, 1)
    span = tone_span_s(decoded)
    steady = steady_part(decoded)
    print(f"\nmp3 mono 3.00 s: {size} bytes, decoded {len(decoded) / RATE:.3f} s, tone {span:.3f} s")
    assert abs(span - 3.0) <= 0.06
    assert abs(level_dbfs(steady) - LEVEL_DBFS) < 1.0
    assert peak_hz(steady) == pytest.approx(1000, abs=10)
    assert 3.0 * 32000 / 8 * 0.95 < size < 3.3 * 32000 / 8  # 32 kbps


def test_mp3_stereo_keeps_channels_apart(thread: RecordingThread, tmp_path: Path) -> None:
    left, right = tone(500, 2.0), tone(1500, 2.0)
    writer = RecordingWriter(thread, tmp_path / "stereo.mp3", "mp3", 2)
    record(writer, left, right)
    decoded = decode_mp3(writer.path, 2)[RATE // 2 : -RATE // 2]
    assert peak_hz(decoded[:, 0]) == pytest.approx(500, abs=10)
    assert peak_hz(decoded[:, 1]) == pytest.approx(1500, abs=10)
    assert band_db(decoded[:, 0], 1500) < -30 and band_db(decoded[:, 1], 500) < -30


CRASH_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
import numpy as np
from appliance.media.audio import FRAME, RATE
from appliance.media.recording import RecordingThread, RecordingWriter

directory = Path(sys.argv[1])
t = np.arange(int(3 * RATE)) / RATE
samples = np.round({amp} * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
thread = RecordingThread()
thread.start()
wav = RecordingWriter(thread, directory / "crash.wav")
mp3 = RecordingWriter(thread, directory / "crash.mp3", "mp3")
start = time.monotonic()
for i in range(int(2.5 * RATE) // FRAME):
    frame = samples[i * FRAME : (i + 1) * FRAME]
    wav.write(frame)
    mp3.write(frame)
    time.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_recordings_survive_kill_9(tmp_path: Path) -> None:
    script = textwrap.dedent(CRASH_SCRIPT).format(amp=AMPLITUDE)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, timeout=20, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    expected = tone(1000, 3.0)

    params, data = read_wav(tmp_path / "crash.wav")  # as the crash left it, before any repair
    unrepaired = params.nframes / RATE
    assert unrepaired >= 1.5
    assert np.array_equal(data, expected[: len(data)])
    repair_wav(tmp_path / "crash.wav")
    params, data = read_wav(tmp_path / "crash.wav")
    assert params.nframes >= len(expected[: int(unrepaired * RATE)])
    assert np.array_equal(data, expected[: len(data)])

    decoded = decode_mp3(tmp_path / "crash.mp3", 1)
    span = tone_span_s(decoded)
    assert span >= 1.5
    assert peak_hz(steady_part(decoded)) == pytest.approx(1000, abs=10)
    print(
        f"\nkill -9 at 2.5 s: wav {unrepaired:.2f} s as left, {params.nframes / RATE:.2f} s repaired, mp3 {span:.2f} s"
    )


class FullDisk(Disk):
    """Takes `room` bytes of writes, then fails like a full file system."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, fd: int, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = super().write(fd, data[: self.room])
        self.room -= n
        return n


@pytest.fixture(params=["tmpfs", "injected"])
def full_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Disk]]:
    if request.param == "injected":
        yield tmp_path, FullDisk(40_001)  # odd: a sample cut in half must not stay in the WAV
        return
    mount = Path(tempfile.mkdtemp(dir=tmp_path))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield mount, Disk()
    finally:
        # Lazily if a file is still open there, so a failing test never leaves a mount behind.
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_stops_once_and_leaves_a_valid_file(full_dir: tuple[Path, Disk]) -> None:
    directory, disk = full_dir
    thread = RecordingThread(disk=disk)
    thread.start()
    errors: list[str] = []
    try:
        samples = tone(1000, 10.0)  # 160 kB: more than the disk holds
        writer = RecordingWriter(thread, directory / "full.wav", on_error=errors.append)
        for frame in frames(samples):
            writer.write(frame)
        writer.close()
        assert writer.wait_closed(5)
        writer.write(samples[:FRAME])  # ignored, no exception
        writer.close()
        time.sleep(0.05)
    finally:
        thread.stop()
    assert len(errors) == 1 and "disk full" in errors[0] and writer.error == errors[0]
    print(f"\n{errors[0]}")
    params, data = read_wav(writer.path)
    assert params.nframes > RATE  # more than a second made it
    assert writer.path.stat().st_size == 44 + 2 * params.nframes
    assert np.array_equal(data, samples[: len(data)])


class SlowDisk(Disk):
    """An SD card in a bad moment: every sync takes `delay` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def sync(self, fd: int) -> None:
        time.sleep(self.delay)
        super().sync(fd)


def test_slow_disk_drops_frames_without_blocking(tmp_path: Path) -> None:
    thread = RecordingThread(limit=50, disk=SlowDisk(0.3))
    thread.start()
    try:
        writer = RecordingWriter(thread, tmp_path / "slow.wav")
        samples = tone(1000, 4.0)
        worst = 0.0
        for frame in frames(samples):
            begin = time.perf_counter()
            writer.write(frame)
            worst = max(worst, time.perf_counter() - begin)
        writer.close()
        assert writer.wait_closed(5)
    finally:
        thread.stop()
    total = len(samples) // FRAME
    print(f"\nslow disk: {writer.dropped} of {total} frames dropped, worst write() {worst * 1e6:.0f} us")
    assert writer.dropped > 0 and writer.accepted + writer.dropped == total
    assert worst < 0.05  # far below the 300 ms a blocking write would take
    params, _ = read_wav(writer.path)
    assert params.nframes == writer.accepted * FRAME


def test_write_cost(thread: RecordingThread, tmp_path: Path) -> None:
    samples = tone(1000, 20.0)
    for channels in (1, 2):
        writer = RecordingWriter(thread, tmp_path / f"cost{channels}.mp3", "mp3", channels)
        chunks = list(frames(samples))
        begin = time.perf_counter()
        for frame in chunks:
            if channels == 1:
                writer.write(frame)
            else:
                writer.write(frame, frame)
        cost = (time.perf_counter() - begin) / len(chunks)
        writer.close()
        assert writer.wait_closed(5)
        assert writer.dropped == 0
        print(f"\nwrite() per frame, {channels} channel(s): {cost * 1e6:.2f} us")


def test_bad_frames_and_parameters(thread: RecordingThread, tmp_path: Path) -> None:
    writer = RecordingWriter(thread, tmp_path / "a.wav")
    with pytest.raises(RecordingError, match="160 int16 samples"):
        writer.write(np.zeros(80, dtype=np.int16))
    with pytest.raises(RecordingError, match="1-channel recording takes 1"):
        writer.write(np.zeros(FRAME, dtype=np.int16), np.zeros(FRAME, dtype=np.int16))
    writer.close()
    writer.close()
    with pytest.raises(RecordingError, match="1 or 2 channels"):
        RecordingWriter(thread, tmp_path / "b.wav", "wav", 3)
    with pytest.raises(RecordingError, match="unknown recording format 'ogg'"):
        RecordingWriter(thread, tmp_path / "b.ogg", "ogg")  # type: ignore[arg-type]
    with pytest.raises(RecordingError, match="not running"):
        RecordingWriter(RecordingThread(), tmp_path / "c.wav")
    assert writer.wait_closed(5)


async def test_aclose_and_error_callback_on_the_loop(tmp_path: Path) -> None:
    thread = RecordingThread(disk=FullDisk(1000))
    thread.start()
    seen: list[tuple[str, bool]] = []
    try:
        on_loop = threading.main_thread()
        writer = RecordingWriter(
            thread, tmp_path / "x.wav", on_error=lambda m: seen.append((m, threading.current_thread() is on_loop))
        )
        for frame in frames(tone(1000, 1.0)):
            writer.write(frame)
        await asyncio.wait_for(writer.aclose(), 5)
        await asyncio.sleep(0)
        assert len(seen) == 1 and seen[0][1]  # delivered on the loop's thread
    finally:
        await thread.astop()


def test_wav_size_limit_stops_the_recording(
    thread: RecordingThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "WAV_MAX_DATA_BYTES", 2 * RATE)  # one second instead of ~74 hours
    errors: list[str] = []
    writer = RecordingWriter(thread, tmp_path / "long.wav", on_error=errors.append)
    for frame in frames(tone(1000, 3.0)):
        writer.write(frame)
    writer.close()
    assert writer.wait_closed(5)
    assert len(errors) == 1 and f"a WAV holds at most {2 * RATE} bytes" in errors[0]
    params, _ = read_wav(writer.path)
    assert 0 < params.nframes <= RATE


def test_repair_wav(tmp_path: Path) -> None:
    samples = tone(1000, 1.0)
    path = tmp_path / "crashed.wav"
    path.write_bytes(wav_header(1, RATE, 0) + samples.tobytes() + b"\x01")  # sizes 0, half a sample
    assert repair_wav(path)
    params, data = read_wav(path)
    assert params.nframes == len(samples) and np.array_equal(data, samples)
    assert not repair_wav(path)  # already right
    (tmp_path / "junk.wav").write_bytes(b"RIFF")
    with pytest.raises(RecordingError, match=r"junk\.wav: not a WAV file"):
        repair_wav(tmp_path / "junk.wav")


def test_store_names_lists_expires_and_repairs(thread: RecordingThread, tmp_path: Path) -> None:
    store = RecordingStore(tmp_path, thread)
    now = 1_700_000_000.0
    short = store.open("sess1-leg/2", "wav", now=now, expire=None)  # THREEMONTHS
    year = store.open("sess1-rec", "mp3", now=now, expire="-1y")
    named = store.open("sess2", "wav", 2, now=now, expire="FIVEYEARS")
    assert short.path.name.startswith("sess1-leg_2-") and short.path.suffix == ".wav"
    assert len({short.path, year.path, named.path}) == 3
    for frame in frames(tone(1000, 2.0)):
        short.write(frame)
        year.write(frame)
        named.write(frame, frame)
    for w in (short, year, named):
        w.close()
        assert w.wait_closed(5)
    crashed = tmp_path / "old-crash.wav"  # no sidecar: kept by its mtime and the default retention
    crashed.write_bytes(wav_header(1, RATE, 0) + tone(500, 1.0).tobytes())
    os.utime(crashed, (now - 100 * DAY_S, now - 100 * DAY_S))

    assert store.repair_all() == [crashed]
    infos = {i.path.name: i for i in store.recordings()}
    assert len(infos) == 4
    assert infos[short.path.name].duration_s == pytest.approx(2.0)
    assert infos[crashed.name].duration_s == pytest.approx(1.0)
    assert infos[year.path.name].duration_s == pytest.approx(2.0, abs=0.25)
    assert infos[named.path.name].size == 44 + 2 * 2 * 2 * RATE
    assert infos[short.path.name].created == now

    assert store.expire(now + 30 * DAY_S) == [crashed]
    assert sorted(p.name for p in store.expire(now + 120 * DAY_S)) == [short.path.name]
    assert not (tmp_path / (short.path.name + ".json")).exists()
    assert store.expire(now + 400 * DAY_S) == [year.path]
    assert [i.path for i in store.recordings()] == [named.path]
    assert retention_s("THREEYEARS") == retention_s("-3y") > retention_s("TWOYEARS")
    with pytest.raises(RecordingError, match="unknown record expire 'FOREVER'"):
        store.open("x", now=now, expire="FOREVER")
