"""The audio codecs of RTP legs: G.711 µ-law (PCMU) and A-law (PCMA), and G.722.

Two ways in, for two kinds of codec:

* G.711 is stateless, so the mixer calls `ulaw_decode` / `ulaw_encode` / `alaw_decode` / `alaw_encode`
  directly on a (legs, FRAME) matrix: every G.711 leg of a tick in one table look-up. Each is a single
  numpy fancy-index into a table built once at import, exact against ITU-T G.711 (the reference
  algorithm of ITU-T G.191 `g711.c`), so there is no per-sample arithmetic on the hot path.
* G.722 keeps state (ADPCM predictors, QMF history), so each direction of each leg gets its own
  `Decoder` / `Encoder` object from `decoder(name)` / `encoder(name)`. The mixer uses those objects
  only for stateful codecs; G.711 has them too, so that callers that handle one leg (tests, players,
  the RTP unit) can treat every codec alike.

There is no resampling anywhere in this module. G.711 is 8 kHz audio and so is `audio.RATE`, which
is checked at import. G.722 is 16 kHz audio split by a QMF filter bank into two 8 kHz sub-bands, and
libg722 can run at 8 kHz: it then skips the filter bank, decodes only the low band (0-4 kHz) and
encodes an empty high band. That is a standard 64 kbit/s stream either way, and the low band is
exactly what an 8 kHz mixer can carry, so it replaces a 16 <-> 8 kHz resampler pair (46.6 ms of
one-way delay with soxr) at no delay at all. At a 16 kHz RATE libg722 would run as true wideband.
"""

from __future__ import annotations

from typing import Final, Protocol

import G722
import numpy as np
import numpy.typing as npt

from appliance.media.audio import FRAME, RATE, SAMPLE, TICK_MS

# The codecs' own audio rates and bit rates: facts of the codecs, not of the internal format.
G711_RATE: Final = 8000
G722_RATE: Final = 16000  # G.722 carries 50-7000 Hz audio sampled at 16 kHz ...
G722_BITRATE: Final = 64000  # ... in its 64 kbit/s mode, the only one RTP uses (RFC 3551 section 4.5.2)
BYTES_PER_MS: Final = 8  # all three codecs send 64 kbit/s
CODEC_RATES: Final[dict[str, int]] = {"PCMU": G711_RATE, "PCMA": G711_RATE, "G722": G722_RATE}

# The rates libg722 runs at: 16000 is wideband through its QMF filter bank; 8000 is the low band alone.
G722_LIBRARY_RATES: Final = (8000, 16000)

# Checked at import rather than on each call: a mismatch is a build-time mistake, and every leg would fail.
if RATE not in G722_LIBRARY_RATES:
    raise RuntimeError(f"audio.RATE is {RATE} Hz; G.722 (libg722) runs only at {G722_LIBRARY_RATES} Hz")
# G.711 is 8 kHz audio and its tables below map samples to codes one to one. Raising the internal
# rate would need a resampler at the G.711 edge (in G711Decoder / G711Encoder and in front of the
# batch functions the mixer calls), which is then where it belongs: this module has none on purpose.
if RATE != G711_RATE:
    raise RuntimeError(f"audio.RATE is {RATE} Hz but G.711 is {G711_RATE} Hz, and codecs.py does not resample")

# G.711's significant bits: µ-law codes 14-bit samples, A-law 13-bit ones (G.191 g711.c).
ULAW_SHIFT: Final = 2
ALAW_SHIFT: Final = 3

Codes = npt.NDArray[np.uint8]
Samples = npt.NDArray[np.int16]


# --- G.711 tables -------------------------------------------------------------------------------
# Built with vectorised integer arithmetic at import (a few hundred µs). The encode tables are laid
# out in two's-complement order of the shifted sample: reading an int16 as uint16 and shifting it
# gives exactly that bit pattern, a non-negative index. `np.take` with non-negative indices is about
# twice as fast as fancy indexing (or take with negative ones), measured on a (600, FRAME) matrix.


def _signed(bits: int) -> npt.NDArray[np.int32]:
    """Every `bits`-bit value, in the order of its two's-complement bit pattern."""
    index = np.arange(1 << bits, dtype=np.int32)
    return np.where(index >= 1 << (bits - 1), index - (1 << bits), index)


def _ulaw_expand() -> Samples:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF  # µ-law sends the complement, so that quiet lines are not runs of 0 bits
    exponent = (inverted >> 4) & 0x7
    mantissa = inverted & 0xF
    # The classic form of G.191's sum: ('1' + mantissa + half a step) << exponent, minus the bias 132.
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.asarray(np.where(code & 0x80, magnitude, -magnitude), dtype=SAMPLE)


def _ulaw_compress() -> Codes:
    value = _signed(16 - ULAW_SHIFT)
    # One's complement for negatives (~v = -v-1) is what makes the code table symmetric; 33 is the bias.
    biased = np.minimum(np.where(value < 0, ~value, value) + 33, 0x1FFF)
    segment = np.searchsorted(64 << np.arange(7), biased, side="right")  # 0..7: where the leading 1 is
    mantissa = (biased >> (segment + 1)) & 0xF
    code = ((7 - segment) << 4) | (0xF - mantissa) | np.where(value >= 0, 0x80, 0)
    return np.asarray(code, dtype=np.uint8)


def _alaw_expand() -> Samples:
    code = np.arange(256, dtype=np.int32)
    toggled = (code ^ 0x55) & 0x7F  # A-law inverts the even bits on the wire, for the same reason
    exponent = toggled >> 4
    step = ((toggled & 0xF) << 4) + 0x8  # mantissa, left-justified, plus half a quantisation step
    step = np.where(exponent > 0, step + 0x100, step)  # segments above 0 have an implicit leading 1
    magnitude = step << np.maximum(exponent - 1, 0)
    return np.asarray(np.where(code & 0x80, magnitude, -magnitude), dtype=SAMPLE)


def _alaw_compress() -> Codes:
    value = _signed(16 - ALAW_SHIFT)
    magnitude = np.where(value < 0, ~value, value) >> 1  # 12 bits: G.191 works from the 16-bit x >> 4
    exponent = np.searchsorted(16 << np.arange(7), magnitude, side="right")  # 0..7
    mantissa = (magnitude >> np.maximum(exponent - 1, 0)) & 0xF
    code = (exponent << 4) | mantissa | np.where(value >= 0, 0x80, 0)
    return np.asarray(code ^ 0x55, dtype=np.uint8)


ULAW_DECODE: Final = _ulaw_expand()  # 256 -> int16
ULAW_ENCODE: Final = _ulaw_compress()  # 16384 (14-bit) -> uint8
ALAW_DECODE: Final = _alaw_expand()  # 256 -> int16
ALAW_ENCODE: Final = _alaw_compress()  # 8192 (13-bit) -> uint8
for _table in (ULAW_DECODE, ULAW_ENCODE, ALAW_DECODE, ALAW_ENCODE):
    _table.flags.writeable = False  # shared by every leg: nobody may patch them by accident


def _check(array: npt.NDArray[np.generic], dtype: type[np.generic]) -> None:
    # A wrong dtype would not fail loudly: int32 samples index the wrong entries, floats raise deep in numpy.
    if array.dtype != dtype:
        raise TypeError(f"expected a {np.dtype(dtype).name} array, got {array.dtype.name}")


def ulaw_decode(data: Codes) -> Samples:
    """µ-law codes of any shape (typically (legs, FRAME)) -> int16 samples of the same shape."""
    _check(data, np.uint8)
    return np.take(ULAW_DECODE, data)


def ulaw_encode(samples: Samples) -> Codes:
    """int16 samples of any shape (typically (legs, FRAME)) -> µ-law codes of the same shape."""
    _check(samples, np.int16)
    return np.take(ULAW_ENCODE, samples.view(np.uint16) >> ULAW_SHIFT)


def alaw_decode(data: Codes) -> Samples:
    """A-law codes of any shape (typically (legs, FRAME)) -> int16 samples of the same shape."""
    _check(data, np.uint8)
    return np.take(ALAW_DECODE, data)


def alaw_encode(samples: Samples) -> Codes:
    """int16 samples of any shape (typically (legs, FRAME)) -> A-law codes of the same shape."""
    _check(samples, np.int16)
    return np.take(ALAW_ENCODE, samples.view(np.uint16) >> ALAW_SHIFT)


def payload_bytes(name: str, ms: int) -> int:
    """RTP payload bytes for `ms` of audio in codec `name`."""
    _canonical(name)
    return BYTES_PER_MS * ms


def _canonical(name: str) -> str:
    # SDP encoding names are case-insensitive (RFC 4566 section 6, rtpmap).
    upper = name.upper()
    if upper not in CODEC_RATES:
        raise ValueError(f"unsupported codec {name!r}; supported: {', '.join(CODEC_RATES)}")
    return upper


# --- per-leg codec objects ----------------------------------------------------------------------


class Decoder(Protocol):
    name: str

    def decode(self, payload: bytes) -> Samples:
        """The RTP payload of one tick -> FRAME samples at RATE."""
        ...


class Encoder(Protocol):
    name: str

    def encode(self, frame: Samples) -> bytes:
        """FRAME samples at RATE -> the RTP payload of one tick."""
        ...


def _check_payload(name: str, payload: bytes) -> None:
    expected = payload_bytes(name, TICK_MS)
    if len(payload) != expected:
        raise ValueError(f"{name} payload of one {TICK_MS} ms tick is {expected} bytes, not {len(payload)}")


def _check_frame(frame: Samples) -> None:
    _check(frame, np.int16)
    # libg722 would happily encode any length, and a table look-up keeps the shape: a short frame
    # would leave as a short payload, so it is refused here instead.
    if frame.shape != (FRAME,):
        raise ValueError(f"expected one frame of {FRAME} samples, got shape {frame.shape}")


class G711Decoder:
    def __init__(self, name: str) -> None:
        self.name = name
        self._table = ULAW_DECODE if name == "PCMU" else ALAW_DECODE

    def decode(self, payload: bytes) -> Samples:
        _check_payload(self.name, payload)
        return np.take(self._table, np.frombuffer(payload, dtype=np.uint8))


class G711Encoder:
    def __init__(self, name: str) -> None:
        self.name = name
        self._table, self._shift = (ULAW_ENCODE, ULAW_SHIFT) if name == "PCMU" else (ALAW_ENCODE, ALAW_SHIFT)

    def encode(self, frame: Samples) -> bytes:
        _check_frame(frame)
        return np.take(self._table, frame.view(np.uint16) >> self._shift).tobytes()


class G722Decoder:
    name = "G722"

    def __init__(self) -> None:
        # At RATE 8000 libg722 decodes the low band only: 160 samples per 160-byte payload, no QMF delay.
        self._codec = G722.G722(RATE, G722_BITRATE)

    def decode(self, payload: bytes) -> Samples:
        _check_payload(self.name, payload)
        return np.frombuffer(self._codec.decode(payload), dtype=np.int16)


class G722Encoder:
    name = "G722"

    def __init__(self) -> None:
        # At RATE 8000 the high band is sent empty, which any wideband decoder reads as silence above 4 kHz.
        self._codec = G722.G722(RATE, G722_BITRATE)

    def encode(self, frame: Samples) -> bytes:
        _check_frame(frame)
        return self._codec.encode(np.ascontiguousarray(frame))


def decoder(name: str) -> Decoder:
    """A fresh decoder for one leg's incoming audio; ValueError for a codec we do not have."""
    canonical = _canonical(name)
    return G722Decoder() if canonical == "G722" else G711Decoder(canonical)


def encoder(name: str) -> Encoder:
    """A fresh encoder for one leg's outgoing audio; ValueError for a codec we do not have."""
    canonical = _canonical(name)
    return G722Encoder() if canonical == "G722" else G711Encoder(canonical)
