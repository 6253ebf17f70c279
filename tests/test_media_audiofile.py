"""Decoding player media: each format to mono int16 at RATE, measured, and every refusal.

Test files are made here: WAV with `wave`, mp3 with lameenc, flac and ogg (Vorbis) with the sox
command when it can write them. The helpers are also used by test_media_fetch.py.
"""

from __future__ import annotations

import asyncio
import functools
import io
import shutil
import subprocess
import tempfile
import threading
import wave
from pathlib import Path

import lameenc
import miniaudio
import numpy as np
import numpy.typing as npt
import pytest

from appliance.media import audiofile
from appliance.media.audio import RATE
from appliance.media.audiofile import MAX_DURATION_S, AudioFileError, decode, decode_async, sniff

FULL_SCALE = 32767.0
LOSSLESS = ("wav", "flac")
LOSSY = ("mp3", "ogg")

Signal = npt.NDArray[np.float64]  # (frames, channels), full scale = 1.0


# --- making test files ----------------------------------------------------------------------------


def tone(freq: float, rate: int, seconds: float = 2.0, amp: float = 0.5) -> Signal:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t))[:, None]


def chirp(rate: int, seconds: float = 2.0, amp: float = 0.5) -> Signal:
    """300 Hz to 3 kHz: inside the telephone band, and unlike a sine it has one correlation peak."""
    t = np.arange(int(rate * seconds)) / rate
    f0, f1 = 300.0, 3000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (amp * np.sin(phase))[:, None]


def to_pcm(signal: Signal) -> npt.NDArray[np.int16]:
    return np.clip(np.rint(signal * FULL_SCALE), -32768, 32767).astype(np.int16)


def make_wav(signal: Signal, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(signal.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_pcm(signal).astype("<i2").tobytes())
    return out.getvalue()


def make_mp3(signal: Signal, rate: int) -> bytes:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(128)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(signal.shape[1])
    encoder.set_quality(2)
    return bytes(encoder.encode(to_pcm(signal).astype("<i2").tobytes()) + encoder.flush())


@functools.cache
def sox_writes(fmt: str) -> bool:
    if shutil.which("sox") is None:
        return False
    listing = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    formats = next((line for line in listing.splitlines() if line.startswith("AUDIO FILE FORMATS")), "")
    return fmt in formats.split()


def make_with_sox(signal: Signal, rate: int, fmt: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / f"out.{fmt}"
        src.write_bytes(make_wav(signal, rate))
        subprocess.run(["sox", str(src), str(dst)], check=True, capture_output=True)
        return dst.read_bytes()


def make_file(fmt: str, signal: Signal, rate: int) -> bytes:
    if fmt == "wav":
        return make_wav(signal, rate)
    if fmt == "mp3":
        return make_mp3(signal, rate)
    if not sox_writes(fmt):
        pytest.skip(f"sox cannot write {fmt} here")
    return make_with_sox(signal, rate, fmt)


# --- measuring ------------------------------------------------------------------------------------


def rms_db(samples: npt.NDArray[np.int16]) -> float:
    x = samples.astype(np.float64) / FULL_SCALE
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def spectrum(samples: npt.NDArray[np.int16]) -> tuple[Signal, Signal]:
    x = samples[RATE // 10 : -RATE // 10].astype(np.float64)  # skip the resampler's edges
    mag: Signal = np.abs(np.fft.rfft(x * np.blackman(len(x))))
    freqs: Signal = np.fft.rfftfreq(len(x), 1 / RATE).astype(np.float64)
    return freqs, mag


def peak_hz(samples: npt.NDArray[np.int16]) -> float:
    freqs, mag = spectrum(samples)
    return float(freqs[np.argmax(mag)])


def worst_spur_db(samples: npt.NDArray[np.int16], freq: float) -> float:
    """The strongest component away from `freq` (and DC), relative to the tone."""
    freqs, mag = spectrum(samples)
    away = (np.abs(freqs - freq) > 40) & (freqs > 40)
    return float(20 * np.log10(mag[away].max() / mag.max()))


def correlation(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16], oversample: int = 16) -> float:
    """Peak normalised cross-correlation over all lags, fractional ones included: codecs add a delay
    that is rarely a whole number of 8 kHz samples, and half a sample off costs a 3 kHz tone 0.4 of
    its correlation. Zero-padding the cross-spectrum interpolates the correlation between lags."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    n = len(x) + len(y)
    xc = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n * oversample) * oversample
    return float(xc.max() / np.sqrt(np.sum(x**2) * np.sum(y**2)))


# --- decoding -------------------------------------------------------------------------------------


def test_48k_stereo_tone_comes_out_1khz_mono_at_rate_same_level_and_length() -> None:
    source = np.repeat(tone(1000, 48000, seconds=2.0), 2, axis=1)
    out = decode(make_wav(source, 48000))
    assert (out.source_format, out.source_rate, out.source_channels) == ("wav", 48000, 2)
    assert out.samples.dtype == np.int16 and out.samples.ndim == 1
    assert abs(out.duration_ms - 2000) <= 20
    assert abs(len(out.samples) - 2 * RATE) <= 20 * RATE // 1000
    assert abs(peak_hz(out.samples) - 1000) < 5
    level = rms_db(out.samples[RATE // 10 : -RATE // 10])
    assert abs(level - rms_db(to_pcm(source[:, 0]))) < 0.5


def test_stereo_is_mixed_to_mono_by_averaging() -> None:
    left = tone(1000, 48000)
    one_side = decode(make_wav(np.hstack([left, np.zeros_like(left)]), 48000)).samples
    assert abs(rms_db(one_side[800:-800]) - (rms_db(to_pcm(left)) - 6.02)) < 0.5
    opposite = decode(make_wav(np.hstack([left, -left]), 48000)).samples
    assert rms_db(opposite) < -80


@pytest.mark.parametrize("freq", [1000, 3400])
def test_44k1_tones_have_no_alias_or_spur(freq: int) -> None:
    # miniaudio's own resampler leaves a spur 43 dB down at 3.4 kHz; soxr measures about 100 dB.
    out = decode(make_wav(tone(freq, 44100), 44100)).samples
    assert abs(peak_hz(out) - freq) < 5
    assert worst_spur_db(out, freq) < -80


@pytest.mark.parametrize("freq", [5000, 6000, 7000])
def test_44k1_tones_above_the_telephone_band_do_not_fold_into_it(freq: int) -> None:
    out = decode(make_wav(tone(freq, 44100), 44100)).samples  # would alias to 8000 - freq
    assert rms_db(out[RATE // 10 : -RATE // 10]) < -70


def test_8k_mono_source_is_passed_through_unchanged() -> None:
    source = chirp(RATE)
    out = decode(make_wav(source, RATE))
    assert np.array_equal(out.samples, to_pcm(source[:, 0]))


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_every_format_decodes_to_the_same_audio(fmt: str) -> None:
    source = np.repeat(chirp(44100), 2, axis=1)
    reference = decode(make_wav(source, 44100)).samples
    out = decode(make_file(fmt, source, 44100))
    assert out.source_format == fmt and out.source_rate == 44100 and out.source_channels == 2
    assert abs(out.duration_ms - 2000) <= 60  # mp3 adds an encoder delay and padding of ~1.6k frames
    assert correlation(out.samples, reference) > (0.99 if fmt in LOSSLESS else 0.9)


def test_format_comes_from_the_content_not_the_name() -> None:
    out = decode(make_wav(tone(1000, 8000), 8000), name_hint="https://example.com/prompt.mp3")
    assert out.source_format == "wav"


async def test_decode_async_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = audiofile._decode

    def spy(data: bytes) -> audiofile.Decoded:
        threads.append(threading.current_thread())
        return real(data)

    monkeypatch.setattr(audiofile, "_decode", spy)
    out = await decode_async(make_wav(tone(1000, 16000), 16000))
    assert out.source_rate == 16000 and abs(peak_hz(out.samples) - 1000) < 5
    assert threads and threads[0] is not threading.main_thread()
    await asyncio.sleep(0)


# --- refusals -------------------------------------------------------------------------------------

OGG_OPUS_HEAD = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13" + b"OpusHead\x01\x02" + b"\x00" * 20
M4A_HEAD = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + b"\x00" * 64
ADTS_HEAD = b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"Not Found: the prompt is gone\n", "text"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "perhaps an error page"),
        (M4A_HEAD, "MP4/M4A (AAC)"),
        (ADTS_HEAD, "AAC (ADTS)"),
        (OGG_OPUS_HEAD, "Ogg with Opus"),
        (b"RIFF\x10\x00\x00\x00AVI LIST" + b"\x00" * 16, "not WAVE"),
        (bytes(range(256)) * 4, "unknown binary"),
    ],
)
def test_unsupported_formats_are_named_with_the_supported_list(data: bytes, what: str) -> None:
    with pytest.raises(AudioFileError, match="unsupported audio format") as caught:
        decode(data, "x.mp3")
    assert what in str(caught.value)
    assert "supported formats are wav, mp3, ogg (vorbis), flac" in str(caught.value)
    assert str(caught.value).startswith("x.mp3: ")


def test_empty_file_is_refused() -> None:
    with pytest.raises(AudioFileError, match="empty file"):
        decode(b"")


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.9])
def test_truncated_files_are_refused(fmt: str, fraction: float) -> None:
    # mp3 is a bare stream of frames, so a cut one cannot be told from a short one: it plays.
    data = make_file(fmt, tone(1000, 48000), 48000)
    with pytest.raises(AudioFileError, match=f"truncated {fmt}"):
        decode(data[: int(len(data) * fraction)])


def test_corrupt_mp3_is_refused() -> None:
    data = bytearray(make_mp3(tone(1000, 48000), 48000))
    data[4:] = np.random.default_rng(7).integers(0, 256, len(data) - 4, dtype=np.uint8).tobytes()
    with pytest.raises(AudioFileError, match="corrupt"):
        decode(bytes(data))


def test_a_frame_sync_and_nothing_decodable_is_corrupt() -> None:
    with pytest.raises(AudioFileError, match="corrupt"):
        decode(b"\xff\xfb\x90\x64" + b"\x00" * 8)


def test_longer_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_DURATION_S == 30 * 60
    monkeypatch.setattr(audiofile, "MAX_DURATION_S", 1)
    for data in (make_wav(tone(1000, 8000), 8000), make_mp3(tone(1000, 48000), 48000)):
        with pytest.raises(AudioFileError, match="too long: 2 s of audio, the limit is 1 s"):
            decode(data)


def test_a_header_that_understates_the_length_is_caught_while_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    # wav and flac lengths come from the header; the decoding loop counts frames itself.
    data = make_wav(tone(1000, 8000, seconds=3.0), 8000)
    real = audiofile._INFO["wav"]

    def lying(d: bytes) -> miniaudio.SoundFileInfo:
        info = real(d)
        info.num_frames = 100
        return info

    monkeypatch.setitem(audiofile._INFO, "wav", lying)
    monkeypatch.setattr(audiofile, "MAX_DURATION_S", 2)
    with pytest.raises(AudioFileError, match="too long"):
        decode(data)


def test_sniff_knows_the_four_formats() -> None:
    assert sniff(make_wav(tone(1, 8000, 0.01), 8000)) == "wav"
    assert sniff(make_mp3(tone(1, 8000, 0.1), 8000)) == "mp3"
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00") == "mp3"
    assert sniff(b"fLaC\x00\x00\x00\x22") == "flac"
    assert sniff(b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis") == "ogg"
