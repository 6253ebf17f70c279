# Types of the PyPI package "G722" (a C extension without type information), as the media plane uses it.
import array

import numpy as np
import numpy.typing as npt

class G722:
    # Stateful: one object per direction of one leg. sample_rate 16000 is true wideband.
    def __init__(self, sample_rate: int, bitrate: int) -> None: ...
    def encode(self, samples: npt.NDArray[np.int16]) -> bytes: ...
    def decode(self, data: bytes) -> array.array[int]: ...
