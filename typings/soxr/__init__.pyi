# Types of python-soxr (ships no py.typed), limited to what the media plane uses.
import numpy as np
import numpy.typing as npt

class ResampleStream:
    def __init__(
        self,
        in_rate: float,
        out_rate: float,
        num_channels: int,
        dtype: str = ...,
        quality: str | int = ...,
        vr: bool = ...,
    ) -> None: ...
    def resample_chunk(self, x: npt.NDArray[np.float32], last: bool = ...) -> npt.NDArray[np.float32]: ...
    def delay(self) -> float: ...
    def clear(self) -> None: ...

def resample(
    x: npt.NDArray[np.float32], in_rate: float, out_rate: float, quality: str | int = ...
) -> npt.NDArray[np.float32]: ...
