"""The media plane's codecs: G.711 exact against the ITU-T reference, G.722 measured on generated signals.

The G.711 reference below is written independently of the module, bit by bit as ITU-T G.191's g711.c
does it (16-bit left-justified input of which only the 14 / 13 most significant bits count), and the
module's tables are compared with it on every input. G.722 is lossy, so it is measured: SNR and level
after aligning the codec chain's constant delay, interworking with a 16 kHz wideband peer in both
directions (including that its high band does not fold into ours), and frame exactness over a long run.
Figures are printed (run with -s); timings are printed, never asserted.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import G722
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from appliance.media import codecs
from appliance.media.audio import FRAME, RATE, TICK_MS

Floats = npt.NDArray[np.float64]
Samples = npt.NDArray[np.int16]
REPO = Path(__file__).resolve().parents[1]

# --- the G.191 reference, one sample at a time --------------------------------------------------


def ref_ulaw_compress(linear: int) -> int:
    absno = ((~linear) >> 2) + 33 if linear < 0 else (linear >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x8 - segno
    low_nibble = 0xF - ((absno >> segno) & 0xF)
    log = (high_nibble << 4) | low_nibble
    return log | 0x80 if linear >= 0 else log


def ref_ulaw_expand(log: int) -> int:
    sign = -1 if log < 0x80 else 1
    mantissa = ~log
    exponent = (mantissa >> 4) & 0x7
    segment = exponent + 1
    mantissa &= 0xF
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(linear: int) -> int:
    ix = (~linear) >> 4 if linear < 0 else linear >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if linear >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_alaw_expand(log: int) -> int:
    ix = (log ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0xF
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if log > 127 else -mant


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)

LAWS: dict[
    str,
    tuple[
        Callable[[int], int],
        Callable[[int], int],
        Callable[..., npt.NDArray[np.uint8]],
        Callable[..., npt.NDArray[np.int16]],
    ],
] = {
    "ulaw": (ref_ulaw_compress, ref_ulaw_expand, codecs.ulaw_encode, codecs.ulaw_decode),
    "alaw": (ref_alaw_compress, ref_alaw_expand, codecs.alaw_encode, codecs.alaw_decode),
}


@functools.cache
def reference_codes(law: str) -> npt.NDArray[np.uint8]:
    """The reference's code for every int16 sample, indexed by sample + 32768."""
    compress = LAWS[law][0]
    return np.array([compress(int(x)) for x in ALL_SAMPLES], dtype=np.uint8)


@pytest.mark.parametrize("law", LAWS)
def test_g711_encode_is_exact_for_every_sample(law: str) -> None:
    encode = LAWS[law][2]
    expected = reference_codes(law)
    got = encode(ALL_SAMPLES)
    assert got.dtype == np.uint8
    mismatches = np.flatnonzero(got != expected)
    assert len(mismatches) == 0, f"first mismatch at sample {ALL_SAMPLES[mismatches[0]]}"


@pytest.mark.parametrize("law", LAWS)
def test_g711_decode_is_exact_for_every_code(law: str) -> None:
    _, expand, _, decode = LAWS[law]
    expected = np.array([expand(int(c)) for c in ALL_CODES], dtype=np.int16)
    got = decode(ALL_CODES)
    assert got.dtype == np.int16
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(
    ("law", "code", "value"),
    [
        ("ulaw", 0xFF, 0),
        ("ulaw", 0x7F, 0),
        ("ulaw", 0x00, -32124),
        ("ulaw", 0x80, 32124),
        ("alaw", 0xD5, 8),
        ("alaw", 0x55, -8),
        ("alaw", 0xAA, 32256),
        ("alaw", 0x2A, -32256),
    ],
)
def test_g711_known_values(law: str, code: int, value: int) -> None:
    _, expand, _, decode = LAWS[law]
    assert expand(code) == value  # the reference agrees with the published values ...
    assert int(decode(np.array([code], dtype=np.uint8))[0]) == value  # ... and so does the table


@pytest.mark.parametrize("law", LAWS)
def test_g711_round_trip_is_stable(law: str) -> None:
    _, _, encode, decode = LAWS[law]
    decoded = decode(ALL_CODES)
    assert np.array_equal(decode(encode(decoded)), decoded)


@pytest.mark.parametrize("law", LAWS)
def test_g711_silence_codes(law: str) -> None:
    _, _, encode, _ = LAWS[law]
    zero = int(encode(np.zeros(1, dtype=np.int16))[0])
    assert zero == (0xFF if law == "ulaw" else 0xD5)


@pytest.mark.parametrize("law", LAWS)
@given(data=st.data())
def test_g711_batches_keep_shape_and_dtype(law: str, data: st.DataObject) -> None:
    _, _, encode, decode = LAWS[law]
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=12))
    samples = data.draw(hnp.arrays(np.int16, shape))
    codes = encode(samples)
    assert codes.shape == samples.shape and codes.dtype == np.uint8
    assert np.array_equal(codes.ravel(), encode(samples.ravel()))  # batching changes nothing
    back = decode(codes)
    assert back.shape == samples.shape and back.dtype == np.int16
    assert np.array_equal(codes, reference_codes(law)[samples.astype(np.int32) + 32768])
    # Decoded values survive re-encoding. (Codes need not: -1 encodes to µ-law's negative zero, 0x7F,
    # which decodes to 0, which encodes to the positive zero, 0xFF.)
    assert np.array_equal(decode(encode(back)), back)
    # Non-contiguous views (every other leg of a matrix) work too.
    if samples.ndim >= 2:
        assert np.array_equal(encode(samples[::2]), codes[::2])


@pytest.mark.parametrize("law", LAWS)
def test_g711_rejects_wrong_dtypes(law: str) -> None:
    _, _, encode, decode = LAWS[law]
    with pytest.raises(TypeError):
        encode(np.zeros(FRAME, dtype=np.int32))
    with pytest.raises(TypeError):
        decode(np.zeros(FRAME, dtype=np.int16))


def test_g711_batch_timing() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(600, FRAME), dtype=np.uint8)
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        codecs.ulaw_encode(codecs.ulaw_decode(codes))
    elapsed = (time.perf_counter() - start) / rounds * 1e6
    print(f"\nG.711 µ-law decode+encode of a (600, {FRAME}) matrix: {elapsed:.0f} µs per tick")


# --- per-leg objects ----------------------------------------------------------------------------


def test_payload_bytes() -> None:
    for name in ("PCMU", "PCMA", "G722", "g722"):
        assert codecs.payload_bytes(name, TICK_MS) == 8 * TICK_MS
    assert codecs.payload_bytes("PCMU", 30) == 240
    with pytest.raises(ValueError, match="opus"):
        codecs.payload_bytes("opus", TICK_MS)


def test_factories() -> None:
    for name in ("PCMU", "PCMA", "G722"):
        assert codecs.decoder(name).name == name
        assert codecs.encoder(name.lower()).name == name
    for bad in ("opus", "G729", ""):
        with pytest.raises(ValueError):
            codecs.decoder(bad)
        with pytest.raises(ValueError):
            codecs.encoder(bad)


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "G722"])
def test_wrong_payload_length_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="bytes"):
        codecs.decoder(name).decode(b"\x00" * (codecs.payload_bytes(name, TICK_MS) - 1))
    with pytest.raises(ValueError):
        codecs.encoder(name).encode(np.zeros(FRAME - 1, dtype=np.int16))


def test_g711_objects_match_batch_functions() -> None:
    rng = np.random.default_rng(2)
    frame = rng.integers(-32768, 32768, size=FRAME, dtype=np.int16)
    payload = rng.integers(0, 256, size=codecs.payload_bytes("PCMU", TICK_MS), dtype=np.uint8).tobytes()
    codes = np.frombuffer(payload, np.uint8)
    assert codecs.encoder("PCMU").encode(frame) == codecs.ulaw_encode(frame).tobytes()
    assert codecs.encoder("PCMA").encode(frame) == codecs.alaw_encode(frame).tobytes()
    assert np.array_equal(codecs.decoder("PCMU").decode(payload), codecs.ulaw_decode(codes))
    assert np.array_equal(codecs.decoder("PCMA").decode(payload), codecs.alaw_decode(codes))


@pytest.mark.parametrize(
    ("rate", "message"),
    [(16000, "G.711 is 8000 Hz"), (11025, "G.722 .* runs only at")],
)
def test_unsupported_internal_rate_fails_at_import(rate: int, message: str) -> None:
    # A fresh interpreter, so that patching audio.RATE cannot leak into the codecs this process uses.
    script = f"import appliance.media.audio as a; a.RATE = {rate}; import appliance.media.codecs"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert re.search(f"RuntimeError: .*{message}", result.stderr), result.stderr


# --- G.722 measured -----------------------------------------------------------------------------

LEVEL_DBFS = -10.0
AMPLITUDE = 32767 * 10 ** (LEVEL_DBFS / 20)
WIRE_RATE = codecs.G722_RATE  # what a wideband peer encodes from and decodes to
WIRE_FRAME = WIRE_RATE * TICK_MS // 1000


def tone(freq: float, seconds: float, rate: int = RATE, delay: float = 0.0) -> Floats:
    t = (np.arange(int(seconds * rate)) - delay) / rate
    return AMPLITUDE * np.sin(2 * np.pi * freq * t)


def chirp(seconds: float, delay: float = 0.0, low: float = 300.0, high: float = 3400.0) -> Floats:
    """A linear sweep over `seconds` at RATE, silent before `delay` samples."""
    t = (np.arange(int(seconds * RATE)) - delay) / RATE
    phase = 2 * np.pi * (low * t + (high - low) / (2 * seconds) * t**2)
    return np.where(t >= 0, AMPLITUDE * np.sin(phase), 0.0)


def pcm(signal: Floats) -> Samples:
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def through_g722(signal: Floats) -> Floats:
    """Encode at RATE, decode back to RATE, tick by tick, with one fresh leg's codec pair."""
    enc, dec = codecs.encoder("G722"), codecs.decoder("G722")
    x = pcm(signal)
    frames = [dec.decode(enc.encode(x[i : i + FRAME])) for i in range(0, len(x) - FRAME + 1, FRAME)]
    assert all(len(f) == FRAME and f.dtype == np.int16 for f in frames)
    return np.concatenate(frames).astype(np.float64)


def xcorr_lag(reference: Floats, output: Floats) -> int:
    """Whole-sample lag of `output` behind `reference`, by FFT cross-correlation."""
    n = len(reference) + len(output)
    corr = np.fft.irfft(np.fft.rfft(output, n) * np.conj(np.fft.rfft(reference, n)), n)
    return int(np.argmax(corr[: len(output)]))


def rms_db(x: Floats) -> float:
    return float(10 * np.log10(np.mean(x**2)))


def snr_db(reference: Floats, output: Floats) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((output - reference) ** 2)))


def aligned(make: Callable[[float], Floats], output: Floats, lag: int, reach: float) -> tuple[float, float]:
    """The fractional delay (within `reach` samples of `lag`) that best explains `output`, and the SNR there.

    A half-sample error alone would cap the SNR of a 3.4 kHz tone near 10 dB, so whole samples are
    not enough; the signals are synthetic, so the reference is regenerated at each candidate delay,
    0.01 samples apart.
    """
    best = max((snr_db(make(d), output), d) for d in np.arange(lag - reach, lag + reach, 0.01))
    return float(best[1]), best[0]


def tone_fit(output: Floats, freq: float, rate: int) -> tuple[float, float]:
    """Level (dB relative to the test tone) of the `freq` component of `output`, and the SNR of the rest.

    A least-squares fit of a sine and a cosine: it finds the tone at whatever delay and phase the far
    end's filter bank left it, so the wideband peer's QMF delay needs no alignment.
    """
    t = np.arange(len(output)) / rate
    basis = np.column_stack((np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)))
    coefficients = np.linalg.lstsq(basis, output, rcond=None)[0]
    fitted = basis @ coefficients
    level = 20 * np.log10(np.hypot(*coefficients) / AMPLITUDE)
    return float(level), snr_db(fitted, output)


SECONDS = 2.0
MEASURED = slice(int(0.5 * RATE), int(1.8 * RATE))  # after the start-up, before the chirp's end
WIRE_MEASURED = slice(int(0.5 * WIRE_RATE), int(1.8 * WIRE_RATE))
WINDOW = 2 * FRAME  # chirp stretch over which the SNR is reported: ~60 Hz of sweep
MAX_DELAY = 4  # samples at RATE (0.5 ms): what is left of the soxr pair's 46.6 ms, allowing for the ADPCM


def test_g722_tone_and_chirp_round_trip() -> None:
    out_chirp = through_g722(chirp(SECONDS))
    lag = xcorr_lag(chirp(SECONDS), out_chirp)
    # One delay for the whole sweep: with no resampler or filter bank in the chain the delay should be
    # the same at every frequency, and the worst stretch's SNR at that one delay is what shows it.
    chirp_delay, chirp_snr = aligned(lambda d: chirp(SECONDS, delay=d)[MEASURED], out_chirp[MEASURED], lag, 2.0)
    reference = chirp(SECONDS, delay=chirp_delay)
    snrs = [
        snr_db(reference[i : i + WINDOW], out_chirp[i : i + WINDOW])
        for i in range(MEASURED.start, MEASURED.stop - WINDOW + 1, WINDOW)
    ]

    # A tone's cross-correlation repeats every period, so the tone starts from the sweep's lag.
    out_tone = through_g722(tone(1000, SECONDS))
    delay, tone_snr = aligned(lambda d: tone(1000, SECONDS, delay=d)[MEASURED], out_tone[MEASURED], lag, 1.0)
    level = rms_db(out_tone[MEASURED]) - rms_db(tone(1000, SECONDS)[MEASURED])
    print(
        f"\nG.722 at {RATE} Hz: delay {delay:.2f} samples ({delay / RATE * 1000:.2f} ms) at 1 kHz, "
        f"{chirp_delay:.2f} over the chirp; 1 kHz {LEVEL_DBFS:.0f} dBFS tone SNR {tone_snr:.1f} dB, "
        f"level {level:+.2f} dB; chirp 300-3400 Hz SNR {chirp_snr:.1f} dB overall, {min(snrs):.1f} dB worst / "
        f"{np.mean(snrs):.1f} dB mean over {WINDOW}-sample stretches at that one delay"
    )
    assert abs(delay) <= MAX_DELAY and abs(chirp_delay) <= MAX_DELAY
    assert tone_snr > 20
    assert abs(level) < 1
    assert min(snrs) > 20


def from_wideband_peer(freq: float) -> Floats:
    """A `freq` tone encoded by a 16 kHz G.722 peer, decoded by our decoder to RATE."""
    peer, dec = G722.G722(WIRE_RATE, codecs.G722_BITRATE), codecs.decoder("G722")
    x = pcm(tone(freq, SECONDS, rate=WIRE_RATE))
    frames = [dec.decode(peer.encode(x[i : i + WIRE_FRAME])) for i in range(0, len(x), WIRE_FRAME)]
    return np.concatenate(frames).astype(np.float64)


def test_g722_decodes_a_wideband_peer() -> None:
    level, snr = tone_fit(from_wideband_peer(1000)[MEASURED], 1000, RATE)
    # 6 kHz is in the peer's high band: the peer's QMF keeps it out of the low band we decode, so it
    # must vanish rather than fold to 2 kHz (which a low band without that filter would carry).
    stopband = rms_db(from_wideband_peer(6000)[MEASURED]) - rms_db(tone(6000, SECONDS)[MEASURED])
    print(
        f"\nG.722 from a {WIRE_RATE} Hz peer, decoded at {RATE} Hz: 1 kHz at {level:+.2f} dB, SNR {snr:.1f} dB; "
        f"6 kHz at {stopband:+.1f} dB"
    )
    assert abs(level) < 1
    assert snr > 20
    if RATE < 12000:  # at a wideband RATE 6 kHz is a legitimate signal
        assert stopband < -30


def test_g722_is_decoded_by_a_wideband_peer() -> None:
    enc, peer = codecs.encoder("G722"), G722.G722(WIRE_RATE, codecs.G722_BITRATE)
    x = pcm(tone(1000, SECONDS))
    frames = [np.frombuffer(peer.decode(enc.encode(x[i : i + FRAME])), np.int16) for i in range(0, len(x), FRAME)]
    assert all(len(f) == WIRE_FRAME for f in frames)
    out = np.concatenate(frames).astype(np.float64)
    level, snr = tone_fit(out[WIRE_MEASURED], 1000, WIRE_RATE)
    print(f"\nG.722 encoded at {RATE} Hz, decoded by a {WIRE_RATE} Hz peer: 1 kHz at {level:+.2f} dB, SNR {snr:.1f} dB")
    assert abs(level) < 1
    assert snr > 20


def test_g722_frames_are_exact_and_never_drift() -> None:
    """500 ticks: every call gives one frame / one payload, and the delay is the same at the end."""
    ticks = 500
    enc, dec = codecs.encoder("G722"), codecs.decoder("G722")
    burst = chirp(0.04)  # 40 ms, broadband: an unambiguous cross-correlation peak
    signal = np.zeros(ticks * FRAME)
    early, late = 10 * FRAME, (ticks - 10) * FRAME
    signal[early : early + len(burst)] = burst
    signal[late : late + len(burst)] = burst
    x = pcm(signal)
    out = []
    for i in range(ticks):
        payload = enc.encode(x[i * FRAME : (i + 1) * FRAME])
        assert len(payload) == codecs.payload_bytes("G722", TICK_MS)
        frame = dec.decode(payload)
        assert frame.shape == (FRAME,) and frame.dtype == np.int16
        out.append(frame)
    y = np.concatenate(out).astype(np.float64)
    half = len(y) // 2
    first = xcorr_lag(burst, y[:half])
    second = xcorr_lag(burst, y[half:]) + half
    print(f"\nG.722 {ticks} ticks: burst at {early} came out at {first}, at {late} came out at {second}")
    assert second - first == late - early
