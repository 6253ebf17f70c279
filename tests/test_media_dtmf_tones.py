"""In-band DTMF against a Q.24-style test set of generated signals, and against talk-off material.

Every signal starts at a random sample offset and random tone phases, so frame phase is exercised
throughout. Run with -s to see the accept/reject table and the per-frame cost.
"""

from __future__ import annotations

import io
import subprocess
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from appliance.media.audio import FRAME, RATE
from appliance.media.dtmf_tones import (
    COLUMNS_HZ,
    KEYS,
    ROWS_HZ,
    ZERO_DBM0_PEAK,
    DtmfDetector,
    DtmfGenerator,
    dtmf_tone,
)

Signal = npt.NDArray[np.float64]
ALL_KEYS = "".join(KEYS)
RNG_SEED = 2324


def key_pair(key: str) -> tuple[float, float]:
    row = next(i for i, keys in enumerate(KEYS) if key in keys)
    return ROWS_HZ[row], COLUMNS_HZ[KEYS[row].index(key)]


def two_tone(
    rng: np.random.Generator,
    key: str,
    ms: float,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    row_dev: float = 0.0,
    col_dev: float = 0.0,
) -> Signal:
    """The key's tones, detuned by the given fractions; twist_db > 0 makes the row (low) tone stronger."""
    low, high = key_pair(key)
    t = np.arange(round(RATE * ms / 1000)) / RATE
    peak = ZERO_DBM0_PEAK * 10 ** (level_dbm0 / 20)
    row = peak * 10 ** (twist_db / 40) * np.sin(2 * np.pi * low * (1 + row_dev) * t + rng.uniform(0, 2 * np.pi))
    col = peak * 10 ** (-twist_db / 40) * np.sin(2 * np.pi * high * (1 + col_dev) * t + rng.uniform(0, 2 * np.pi))
    return np.asarray(row + col, dtype=np.float64)


def gap(ms: float) -> Signal:
    return np.zeros(round(RATE * ms / 1000))


def detect(rng: np.random.Generator, *parts: Signal, noise_db: float | None = None) -> list[str]:
    """Keys found in the parts played back to back, after a random lead-in, optionally with white noise."""
    signal = np.concatenate([gap(20), np.zeros(int(rng.integers(0, FRAME))), *parts, gap(100)])
    if noise_db is not None:
        tone_power = float(np.mean(np.concatenate(parts) ** 2))
        signal = signal + rng.normal(0, np.sqrt(tone_power / 10 ** (noise_db / 10)), len(signal))
    return run(signal)


def run(signal: Signal) -> list[str]:
    padded = np.zeros(-(-len(signal) // FRAME) * FRAME)
    padded[: len(signal)] = signal
    pcm = np.clip(np.rint(padded), -32768, 32767).astype(np.int16)
    detector = DtmfDetector()
    return [key for frame in pcm.reshape(-1, FRAME) for key in detector.feed(frame)]


@dataclass
class Row:
    category: str
    expect: bool  # True: every case must be detected exactly once; False: none may be detected
    cases: int = 0
    accepted: int = 0

    def add(self, key: str, found: list[str]) -> None:
        self.cases += 1
        # in a reject row any detection, even of another key, is a failure
        self.accepted += (found == [key]) if self.expect else bool(found)

    @property
    def ok(self) -> bool:
        return self.accepted == (self.cases if self.expect else 0)


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n{'category':<34} {'expect':<7} {'accepted':>9} {'rejected':>9}")
    for row in rows:
        mark = "" if row.ok else "  <-- FAIL"
        expect = "accept" if row.expect else "reject"
        print(f"{row.category:<34} {expect:<7} {row.accepted:>9} {row.cases - row.accepted:>9}{mark}")


def deviations(dev: float) -> Iterator[tuple[float, float]]:
    """Detunings of one tone or both, in both directions, for a tolerance test."""
    for sign in (1, -1):
        yield sign * dev, 0.0
        yield 0.0, sign * dev
        yield sign * dev, sign * dev
        yield sign * dev, -sign * dev


def test_q24_accept_reject_set() -> None:
    rng = np.random.default_rng(RNG_SEED)
    rows: list[Row] = []

    def row(category: str, expect: bool) -> Row:
        rows.append(Row(category, expect))
        return rows[-1]

    nominal = row("nominal, 100 ms, -10 dBm0", True)
    for key in ALL_KEYS * 4:
        nominal.add(key, detect(rng, two_tone(rng, key, 100)))
    for dev, expect in ((0.010, True), (0.015, True), (0.035, False), (0.05, False)):
        r = row(f"frequency +-{dev:.1%}", expect)
        for key in ALL_KEYS:
            for row_dev, col_dev in deviations(dev):
                r.add(key, detect(rng, two_tone(rng, key, 100, row_dev=row_dev, col_dev=col_dev)))
    for twist, expect in ((6.0, True), (-3.0, True), (8.0, True), (-4.0, True), (10.0, False), (-6.0, False)):
        r = row(f"twist {twist:+.0f} dB (row - column)", expect)
        for key in ALL_KEYS * 2:
            r.add(key, detect(rng, two_tone(rng, key, 100, twist_db=twist)))
    for ms, expect in ((40, True), (50, True), (100, True), (15, False), (20, False), (23, False)):
        r = row(f"duration {ms} ms", expect)
        for key in ALL_KEYS * 4:
            r.add(key, detect(rng, two_tone(rng, key, ms)))
    for level in (-30, -25, -20, -15, -10, -5, -3, 0):
        r = row(f"level {level} dBm0 per tone", True)
        for key in ALL_KEYS:
            r.add(key, detect(rng, two_tone(rng, key, 100, level_dbm0=level)))
    for snr in (20, 15):
        r = row(f"white noise, SNR {snr} dB, -20 dBm0", True)
        for key in ALL_KEYS * 2:
            r.add(key, detect(rng, two_tone(rng, key, 100, level_dbm0=-20), noise_db=snr))
    pairs = row("two digits, 40 ms on, 40 ms gap", True)
    for first, second in zip(ALL_KEYS, ALL_KEYS[5:] + ALL_KEYS[:5] + "159D", strict=False):
        found = detect(rng, two_tone(rng, first, 40), gap(40), two_tone(rng, second, 40))
        pairs.add(first + second, ["".join(found)])
    repeats = row("same digit twice, 40 ms gap", True)
    for key in ALL_KEYS:
        found = detect(rng, two_tone(rng, key, 50), gap(40), two_tone(rng, key, 50))
        repeats.add(key + key, ["".join(found)])
    long = row("2 s tone, reported once", True)
    for key in ALL_KEYS:
        long.add(key, detect(rng, two_tone(rng, key, 2000)))

    print_table("DTMF receiver, Q.24-style test set (cases per category)", rows)
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]


TALK_OFF_TEXTS = {
    "en": "One two three four five six seven eight nine zero. Please call me back at five five five, "
    "one two one two, after the tone. The quick brown fox jumps over the lazy dog.",
    "en-us": "Press one for sales, press two for support, or stay on the line. Your account number is "
    "four eight one five one six two three four two. Hello, how are you doing today?",
    "de": "Eins zwei drei vier fünf sechs sieben acht neun null. Bitte rufen Sie uns unter der Nummer "
    "null acht neun, sieben sieben drei, vier vier an. Guten Morgen, wie geht es Ihnen?",
    "fr": "Un deux trois quatre cinq six sept huit neuf zéro. Veuillez composer le zéro un, quarante "
    "deux, soixante huit. Bonjour madame, je voudrais réserver une table pour ce soir.",
    "es": "Uno dos tres cuatro cinco seis siete ocho nueve cero. Llame al nueve uno, cuatro cinco "
    "seis, siete ocho. Buenos días, quisiera hablar con el señor García, por favor.",
    "en+f3": "Nine eight seven six five four three two one. Star, pound, hash, zero. Thank you for "
    "calling, all our agents are busy, your call is important to us.",
    "it": "Uno due tre quattro cinque sei sette otto nove zero. Buongiorno, vorrei parlare con il "
    "direttore, per favore. Il numero è tre tre tre, quattro quattro quattro.",
}


def espeak(voice: str, text: str, speed: int) -> Signal:
    """Speech from espeak-ng, at RATE."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, timeout=30, check=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:  # espeak streams, so the header's length is a placeholder
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float32)
    return np.asarray(soxr.resample(samples, rate, RATE), dtype=np.float64)


@pytest.fixture(scope="module")
def speech() -> dict[str, Signal]:
    return {
        f"{voice} {speed} wpm": espeak(voice, text, speed)
        for voice, text in TALK_OFF_TEXTS.items()
        for speed in (140, 200)
    }


def at_level(signal: Signal, dbm0: float) -> Signal:
    """Signal scaled so that its active part has the given mean power."""
    active = signal[np.abs(signal) > 0.05 * np.max(np.abs(signal))]
    rms = float(np.sqrt(np.mean(active**2)))
    return np.asarray(signal * (ZERO_DBM0_PEAK / np.sqrt(2) * 10 ** (dbm0 / 20) / rms), dtype=np.float64)


def test_talk_off_speech(speech: dict[str, Signal]) -> None:
    total_s = 0.0
    detections: dict[str, list[str]] = {}
    print(f"\nTalk-off on espeak-ng speech\n{'voice':<18} {'seconds':>7} {'-20 dBm0':>9} {'-8 dBm0':>8}")
    for name, signal in speech.items():
        quiet, loud = run(at_level(signal, -20)), run(at_level(signal, -8))
        total_s += 2 * len(signal) / RATE
        detections[name] = quiet + loud
        print(f"{name:<18} {len(signal) / RATE:>7.1f} {len(quiet):>9} {len(loud):>8}")
    print(f"{'total, both levels':<18} {total_s:>7.1f} {sum(len(d) for d in detections.values()):>9}")
    assert total_s >= 30
    assert all(not found for found in detections.values()), detections


def chord(rng: np.random.Generator, root_hz: float, ms: float) -> Signal:
    """A major triad of harmonic-rich notes with a decaying envelope, like a plucked instrument."""
    t = np.arange(round(RATE * ms / 1000)) / RATE
    total = np.zeros(len(t))
    for ratio in (1.0, 2 ** (4 / 12), 2 ** (7 / 12)):
        for harmonic in range(1, 6):
            hz = root_hz * ratio * harmonic
            if hz < RATE / 2:
                total += np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) / harmonic
    return np.asarray(total * np.exp(-t * 3) * ZERO_DBM0_PEAK * 0.2, dtype=np.float64)


def test_talk_off_music_and_sweep() -> None:
    rng = np.random.default_rng(RNG_SEED)
    roots = 220 * 2 ** (np.arange(-12, 13) / 12)  # every semitone from A2 to A4
    chords = np.concatenate([chord(rng, root, 400) for root in roots])
    t = np.arange(3 * RATE) / RATE
    sweep_hz = 300 + (3400 - 300) * t / t[-1]
    sweep = ZERO_DBM0_PEAK * 0.3 * np.sin(2 * np.pi * np.cumsum(sweep_hz) / RATE)
    found_chords, found_sweep = run(chords), run(sweep)
    print(
        f"\nTalk-off: {len(roots)} chords {len(chords) / RATE:.1f} s -> {len(found_chords)} detections, "
        f"sweep 300-3400 Hz 3 s -> {len(found_sweep)} detections"
    )
    assert len(found_chords) <= 1
    assert not found_sweep


def test_generator_round_trip() -> None:
    generator = DtmfGenerator("123A#", on_ms=60, off_ms=60)
    detector = DtmfDetector()
    found: list[str] = []
    while (frame := generator.next_frame()) is not None:
        assert frame.shape == (FRAME,)
        assert frame.dtype == np.int16
        found += detector.feed(frame)
    assert found == list("123A#")
    assert generator.next_frame() is None


def test_generator_timing() -> None:
    generator = DtmfGenerator("5", on_ms=100, off_ms=100)
    frames = []
    while (frame := generator.next_frame()) is not None:
        frames.append(frame)
    assert len(frames) == 200 * RATE // 1000 // FRAME
    assert np.all(np.concatenate(frames)[RATE // 10 :] == 0)
    assert DtmfGenerator("").next_frame() is None


@pytest.mark.parametrize("key", list(ALL_KEYS))
def test_tone_spectrum_and_level(key: str) -> None:
    level = -7.0
    tone = dtmf_tone(key, duration_ms=1000, level_dbm0=level).astype(np.float64)
    assert len(tone) == RATE
    spectrum = np.abs(np.fft.rfft(tone)) * 2 / len(tone)  # one-second signal: 1 Hz bins, peak amplitudes
    peaks = sorted(np.argsort(spectrum)[-2:].tolist())
    assert peaks == [round(f) for f in key_pair(key)]
    for bin_hz in peaks:
        measured = 20 * np.log10(spectrum[bin_hz] / ZERO_DBM0_PEAK)
        assert abs(measured - level) < 0.5
    rest = spectrum.copy()
    rest[peaks] = 0
    assert float(np.max(rest)) < 1e-3 * float(np.max(spectrum))


def test_tone_shape_and_errors() -> None:
    assert len(dtmf_tone("0", duration_ms=45)) == RATE * 45 // 1000
    assert np.max(np.abs(dtmf_tone("D", level_dbm0=0.0))) <= 32767  # two 0 dBm0 tones clip, never wrap
    for bad in ("E", "", "11", "a"):
        with pytest.raises(ValueError, match="no DTMF key"):
            dtmf_tone(bad)
    with pytest.raises(ValueError, match="no DTMF key"):
        DtmfGenerator("12x")
    with pytest.raises(ValueError, match="sub-blocks"):
        DtmfDetector().feed(np.zeros(FRAME + 1, dtype=np.int16))


def test_reset_forgets_a_tone_in_progress() -> None:
    pcm = dtmf_tone("7", duration_ms=200)
    detector = DtmfDetector()
    assert detector.feed(pcm[:FRAME]) == []
    detector.reset()
    found = [key for start in range(FRAME, FRAME * 10, FRAME) for key in detector.feed(pcm[start : start + FRAME])]
    assert found == ["7"]


def test_per_frame_cost(speech: dict[str, Signal]) -> None:
    rng = np.random.default_rng(RNG_SEED)
    material = {
        "silence": np.zeros(RATE),
        "white noise": rng.normal(0, 3000, RATE),
        "speech": at_level(next(iter(speech.values())), -15),
        "DTMF tone": two_tone(rng, "5", 1000),
    }
    print("\nDTMF detector cost per 20 ms frame (informative, not asserted)")
    for name, signal in material.items():
        pcm = np.clip(np.rint(signal[: len(signal) // FRAME * FRAME]), -32768, 32767).astype(np.int16)
        frames = list(pcm.reshape(-1, FRAME))
        detector = DtmfDetector()
        start = time.perf_counter()
        for _ in range(5):
            for frame in frames:
                detector.feed(frame)
        cost = (time.perf_counter() - start) / (5 * len(frames))
        print(f"{name:<12} {cost * 1e6:6.1f} us")
