"""The media plane's internal audio format, defined here and nowhere else.

Every unit hands the mixer 16-bit signed PCM, mono, at `RATE`, one `FRAME` of samples per 20 ms tick.
8 kHz is what every line but a wideband SIP phone speaks (G.711, GSM modems, analog ports), so no
leg needs resampling: G.722 legs use libg722's own 8 kHz mode (the low band; see media/codecs.py).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 8000  # samples per second
TICK_MS = 20  # the mixer runs on a fixed 20 ms grid
FRAME = RATE * TICK_MS // 1000  # samples per tick
SAMPLE = np.int16

Frame = npt.NDArray[np.int16]  # one tick of audio: shape (FRAME,)


def silence() -> Frame:
    return np.zeros(FRAME, dtype=SAMPLE)
