"""In-band DTMF (ITU-T Q.23 tones, Q.24 receiver limits): a per-stream detector and a generator.

Analysis runs on 10 ms sub-blocks: one small matrix product gives each sub-block's complex DFT at the
eight tone frequencies and their second harmonics. Three views of the same coefficients do the work:

- two adjacent sub-blocks summed coherently form a 20 ms window, narrow enough to tell neighbouring
  rows apart (73 Hz) for the relative-peak check;
- the phase advance of a bin from one sub-block to the next measures the tone's real frequency, which
  is the only way to separate +-1.5 % (accept) from +-3.5 % (reject) at unknown level with blocks this
  short; a filter's bandwidth cannot do it because level and detuning look alike;
- the sub-blocks' own powers, corrected for that detuning, give level, twist and energy ratio.

Duration is measured, not counted in blocks: a sub-block only partly covered by the tone has an
energy ratio equal to the covered fraction, so summing the ratios (normalised to the run's best one)
over a run of valid windows estimates how long the tone lasted to a few ms, whatever the frame phase.
That is how a 40 ms tone is accepted while a 23 ms burst is not, with blocks of 10 ms.
"""

from __future__ import annotations

import cmath
import logging
import math
from collections import deque

import numpy as np
import numpy.typing as npt

from appliance.media.audio import FRAME, RATE

log = logging.getLogger(__name__)

KEYS = ("123A", "456B", "789C", "*0#D")  # rows of the keypad, low tone by row, high tone by column
ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMNS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
TONES_HZ = ROWS_HZ + COLUMNS_HZ

# Q.24 / AT&T receiver limits, with the decision points placed between "must accept" and "must reject"
FREQUENCY_TOLERANCE = 0.025  # accept within +-1.5 %, reject beyond +-3.5 %: decide at 2.5 %
NORMAL_TWIST_DB = 8.5  # row (low) tone may be 8 dB stronger; 0.5 dB of measuring margin
REVERSE_TWIST_DB = 4.5  # column (high) tone may be 4 dB stronger
RELATIVE_PEAK_DB = 8.0  # every other row (column) at least this much weaker than the chosen one
HARMONIC_DB = 10.0  # a tone's second harmonic at least this much weaker: pure tones have none, voices do
ENERGY_RATIO = 0.8  # the two tones must hold this share of the window's energy
MIN_TONE_DBM0 = -36.0  # each tone at least this loud; Q.24 asks for operation down to about -30 dBm0
MIN_DURATION_S = 0.030  # accept >= 40 ms, reject <= 23 ms
MIN_WINDOWS = 2  # valid 20 ms windows in a row before a key can be confirmed (persistence)
RELEASE_WINDOWS = 2  # windows without the key that end it (20 ms: a 40 ms pause separates two digits)

ZERO_DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)  # 0 dBm0 sine is 3.17 dB below full scale (G.711)
ZERO_DBM0_POWER = ZERO_DBM0_PEAK**2 / 2  # its mean square

SUB = RATE // 100  # samples per 10 ms sub-block
WINDOW = 2 * SUB  # samples per analysis window
if FRAME % SUB:
    raise ImportError(f"a frame of {FRAME} samples is not a whole number of {SUB}-sample sub-blocks")

_BINS_HZ = np.array(TONES_HZ + tuple(2 * f for f in TONES_HZ))
_N = len(TONES_HZ)
# DFT basis as interleaved (cos, -sin) columns, so the real product can be viewed as complex in place
_angles = 2 * np.pi * np.outer(np.arange(SUB), _BINS_HZ) / RATE
_BASIS = np.empty((SUB, 2 * len(_BINS_HZ)))
_BASIS[:, 0::2] = np.cos(_angles)
_BASIS[:, 1::2] = -np.sin(_angles)
# A sub-block's local phase lags the previous one's by this much at each bin's nominal frequency
_ADVANCE = np.exp(-2j * np.pi * _BINS_HZ * SUB / RATE).tolist()
_MIN_TONE_POWER = ZERO_DBM0_POWER * 10 ** (MIN_TONE_DBM0 / 10)
_MIN_ENERGY = 2 * _MIN_TONE_POWER * WINDOW  # a window's energy when both tones are at the minimum level
_QUIET_POWER = _MIN_TONE_POWER / 10  # below this mean square a frame is not analysed at all
_MIN_OCCUPANCY = MIN_DURATION_S * RATE / SUB  # in sub-blocks
_RELATIVE_PEAK = 10 ** (-RELATIVE_PEAK_DB / 10)
_NORMAL_TWIST = 10 ** (NORMAL_TWIST_DB / 10)
_REVERSE_TWIST = 10 ** (REVERSE_TWIST_DB / 10)
_HARMONIC = 10 ** (-HARMONIC_DB / 10)
_HZ_PER_RADIAN = RATE / (2 * math.pi * SUB)


def _response(offset_hz: float, length: int) -> complex:
    """Sum of e^(j 2 pi offset n / RATE) over n < length: a length-sample DFT bin's gain for a tone offset_hz away."""
    x = math.pi * offset_hz / RATE
    if abs(math.sin(x)) < 1e-12:
        return complex(length)
    return cmath.exp(1j * x * (length - 1)) * math.sin(x * length) / math.sin(x)


def _gain(offset_hz: float) -> float:
    """Power gain of a sub-block bin for a tone offset_hz away from it, 1 when on frequency."""
    x = math.pi * offset_hz / RATE
    if abs(math.sin(x)) < 1e-12:
        return 1.0
    return (math.sin(x * SUB) / (SUB * math.sin(x))) ** 2


# The largest detuning correction a tone within tolerance can need, to reject most windows before it
_MAX_CORRECTION = 1 / _gain(FREQUENCY_TOLERANCE * max(TONES_HZ))
_SILENT: tuple[list[complex], list[float], float] = ([0j] * len(_BINS_HZ), [0.0] * _N, 0.0)


class DtmfDetector:
    """One stream's detector; feed it consecutive frames."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # (coefficients, tone powers, energy) of the last three sub-blocks, oldest first
        self._recent: deque[tuple[list[complex], list[float], float]] = deque([_SILENT] * 3, maxlen=3)
        self._candidate: str | None = None  # key of the current run of valid windows
        self._pair = (0, 0)
        self._ratios: list[float] = []  # energy ratio of each sub-block of the run, for the duration estimate
        self._windows = 0
        self._tail_added = False
        self._active: str | None = None  # confirmed key still sounding
        self._misses = 0

    def feed(self, frame: npt.NDArray[np.int16]) -> list[str]:
        """Keys whose tone *started* (was confirmed) in this frame; each key reported once per tone."""
        if frame.ndim != 1 or len(frame) % SUB:
            raise ValueError(f"a frame is a flat run of whole {SUB}-sample sub-blocks, not shape {frame.shape}")
        x = frame.astype(np.float64).reshape(-1, SUB)
        energies: list[float] = np.einsum("ij,ij->i", x, x).tolist()
        found: list[str] = []
        if sum(energies) < _QUIET_POWER * len(frame):
            # Silence costs next to nothing; the persistence logic still sees every window, as empty.
            for _ in energies:
                self._recent.append(_SILENT)
                key = self._step(None)
                if key is not None:
                    found.append(key)
            return found
        # One product gives every sub-block's DFT at all bins; the rest is arithmetic on a few scalars,
        # cheaper in plain Python than as many tiny numpy calls.
        coefficients: list[list[complex]] = (x @ _BASIS).view(np.complex128).tolist()
        for energy, coeffs in zip(energies, coefficients, strict=True):
            powers = [c.real * c.real + c.imag * c.imag for c in coeffs[:_N]]
            self._recent.append((coeffs, powers, energy))
            key = self._step(self._classify())
            if key is not None:
                found.append(key)
        return found

    def _classify(self) -> tuple[int, int] | None:
        """The (row, column) that the latest 20 ms window (two sub-blocks) holds as a valid DTMF pair, or None."""
        _, (previous, previous_powers, previous_energy), (coeffs, powers, energy) = self._recent
        energy += previous_energy
        if energy < _MIN_ENERGY:
            return None
        sums = [a + b for a, b in zip(previous_powers, powers, strict=True)]
        row = max(range(4), key=sums.__getitem__)
        col = max(range(4, 8), key=sums.__getitem__)
        # Energy ratio, generously, before the costlier checks: this ends nearly every window of speech
        tones = sums[row] + sums[col]
        if tones * WINDOW * _MAX_CORRECTION < ENERGY_RATIO * SUB * SUB * energy:
            return None
        # Relative peak on the coherent 20 ms window, whose selectivity tells neighbouring rows apart
        window = [p + c * a for p, c, a in zip(previous, coeffs, _ADVANCE, strict=True)]
        peaks = [w.real * w.real + w.imag * w.imag for w in window[:_N]]
        row_peak, col_peak = peaks[row], peaks[col]
        for i in range(_N):
            if i not in (row, col) and peaks[i] > (row_peak if i < 4 else col_peak) * _RELATIVE_PEAK:
                return None
        row_offset = cmath.phase(coeffs[row] * _ADVANCE[row] * previous[row].conjugate()) * _HZ_PER_RADIAN
        col_offset = cmath.phase(coeffs[col] * _ADVANCE[col] * previous[col].conjugate()) * _HZ_PER_RADIAN
        if abs(row_offset) > FREQUENCY_TOLERANCE * TONES_HZ[row]:
            return None
        if abs(col_offset) > FREQUENCY_TOLERANCE * TONES_HZ[col]:
            return None
        # Mean square of each tone over the window, undoing the sub-block bins' loss for a detuned tone
        row_power = sums[row] / (SUB * SUB * _gain(row_offset))
        col_power = sums[col] / (SUB * SUB * _gain(col_offset))
        if row_power < _MIN_TONE_POWER or col_power < _MIN_TONE_POWER:
            return None
        if row_power > col_power * _NORMAL_TWIST or col_power > row_power * _REVERSE_TWIST:
            return None
        if (row_power + col_power) * WINDOW < ENERGY_RATIO * energy:
            return None
        # Second harmonics, from the coherent window. A row's harmonic (1394-1882 Hz) lies among the
        # columns, so the column tone's own leakage into that bin is predicted and taken out first.
        amplitude = window[col] / _response(col_offset, WINDOW)
        leak = amplitude * _response(TONES_HZ[col] + col_offset - 2 * TONES_HZ[row], WINDOW)
        if abs(window[row + _N] - leak) ** 2 > row_peak * _HARMONIC:
            return None
        if abs(window[col + _N]) ** 2 > col_peak * _HARMONIC:
            return None
        return row, col

    def _ratio(self, back: int, row: int, col: int) -> float:
        """Energy ratio of the key's two tones in the sub-block `back` steps before the latest."""
        _, powers, energy = self._recent[-1 - back]
        return 2 * (powers[row] + powers[col]) / (SUB * energy) if energy > 0 else 0.0

    def _step(self, pair: tuple[int, int] | None) -> str | None:
        """Advance the persistence state by one window; the key if it is confirmed now."""
        key = None if pair is None else KEYS[pair[0]][pair[1] - 4]
        if pair is not None and key == self._candidate:
            self._ratios.append(self._ratio(0, *pair))
            self._windows += 1
            self._tail_added = False
        elif pair is not None:
            self._candidate, self._pair = key, pair
            # the sub-block before the window may hold the tone's start
            self._ratios = [self._ratio(2, *pair), self._ratio(1, *pair), self._ratio(0, *pair)]
            self._windows = 1
            self._tail_added = False
        elif self._candidate is not None:
            if self._tail_added:
                self._candidate = None
            else:
                self._ratios.append(self._ratio(0, *self._pair))  # may hold the tone's end
                self._tail_added = True
        confirmed = None
        if (
            self._candidate is not None
            and self._candidate != self._active
            and self._windows >= MIN_WINDOWS
            and self._occupancy() >= _MIN_OCCUPANCY
        ):
            confirmed = self._active = self._candidate
            self._misses = 0
            log.debug("DTMF %s", confirmed)
        if self._active is not None:
            self._misses = 0 if key == self._active else self._misses + 1
            if self._misses >= RELEASE_WINDOWS:
                self._active = None
        return confirmed

    def _occupancy(self) -> float:
        """How many sub-blocks' worth of tone the run holds (its duration in SUB-sample units)."""
        best = max(self._ratios)
        return sum(min(1.0, r / best) for r in self._ratios) if best > 0 else 0.0


def _key_tones(key: str) -> tuple[float, float]:
    for row, keys in enumerate(KEYS):
        col = keys.find(key)
        if len(key) == 1 and col >= 0:
            return ROWS_HZ[row], COLUMNS_HZ[col]
    raise ValueError(f"no DTMF key {key!r}; keys are 0-9, *, # and A-D")


def dtmf_tone(key: str, duration_ms: int = 100, level_dbm0: float = -10.0, rate: int = RATE) -> npt.NDArray[np.int16]:
    """The two-tone signal for key, ValueError for an unknown key.

    level_dbm0 is per tone (Q.23 practice); two tones at 0 dBm0 exceed linear PCM's range and clip.
    """
    low, high = _key_tones(key)
    if duration_ms < 0:
        raise ValueError(f"a tone cannot last {duration_ms} ms")
    t = np.arange(rate * duration_ms // 1000) / rate
    peak = ZERO_DBM0_PEAK * 10 ** (level_dbm0 / 20)
    signal = peak * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


class DtmfGenerator:
    """Plays digits into a stream frame by frame: each key `on_ms` tone then `off_ms` silence."""

    def __init__(self, digits: str, on_ms: int = 100, off_ms: int = 100, level_dbm0: float = -10.0) -> None:
        if off_ms < 0:
            raise ValueError(f"a pause cannot last {off_ms} ms")
        pause = np.zeros(RATE * off_ms // 1000, dtype=np.int16)
        parts = [part for key in digits for part in (dtmf_tone(key, on_ms, level_dbm0), pause)]
        signal = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        padded = np.zeros(-(-len(signal) // FRAME) * FRAME, dtype=np.int16)
        padded[: len(signal)] = signal
        self._frames = padded.reshape(-1, FRAME)
        self._next = 0

    def next_frame(self) -> npt.NDArray[np.int16] | None:
        """The next FRAME of samples, None when all digits have been played."""
        if self._next >= len(self._frames):
            return None
        frame: npt.NDArray[np.int16] = self._frames[self._next].copy()
        self._next += 1
        return frame
