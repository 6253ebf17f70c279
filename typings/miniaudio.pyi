# Types of pyminiaudio (ships no py.typed), limited to what the players' decoder uses (media/audiofile.py).
import array
from collections.abc import Generator
from enum import Enum

class SampleFormat(Enum):
    UNKNOWN = 0
    UNSIGNED8 = 1
    SIGNED16 = 2
    SIGNED24 = 3
    SIGNED32 = 4
    FLOAT32 = 5

class FileFormat(Enum):
    UNKNOWN = 0
    WAV = 1
    FLAC = 2
    MP3 = 3
    VORBIS = 4

class DitherMode(Enum):
    NONE = 0
    RECTANGLE = 1
    TRIANGLE = 2

class MiniaudioError(Exception): ...
class DecodeError(MiniaudioError): ...

class SoundFileInfo:
    name: str
    file_format: FileFormat
    nchannels: int
    sample_rate: int
    sample_format: SampleFormat
    sample_width: int
    num_frames: int
    duration: float

class DecodedSoundFile(SoundFileInfo):
    samples: array.array[int] | array.array[float]

def wav_get_info(data: bytes) -> SoundFileInfo: ...
def mp3_get_info(data: bytes) -> SoundFileInfo: ...
def vorbis_get_info(data: bytes) -> SoundFileInfo: ...
def flac_get_info(data: bytes) -> SoundFileInfo: ...
def decode(
    data: bytes,
    output_format: SampleFormat = ...,
    nchannels: int = ...,
    sample_rate: int = ...,
    dither: DitherMode = ...,
) -> DecodedSoundFile: ...
def stream_memory(
    data: bytes,
    output_format: SampleFormat = ...,
    nchannels: int = ...,
    sample_rate: int = ...,
    frames_to_read: int = ...,
    dither: DitherMode = ...,
) -> Generator[array.array[int] | array.array[float], int]: ...
