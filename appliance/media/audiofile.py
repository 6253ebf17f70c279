"""Audio files for players: wav, mp3, ogg (Vorbis) and flac, decoded to the internal format.

These are the formats VoxEngine plays from a URL (reference section 4.8). A file is recognised by its
content, never by its name or Content-Type: web servers label media carelessly, and an error page
served with status 200 must be reported as what it is, not as a broken mp3.

miniaudio decodes at the file's own rate and channel count; the channels are averaged to mono and
soxr resamples to `audio.RATE`. miniaudio can resample too, but its resampler is linear
interpolation behind a low-order filter. Measured on this machine, 2 s tones at 44.1 kHz in,
8 kHz out (`tests/test_media_audiofile.py` checks the soxr side):

    input               miniaudio to 8 kHz                 miniaudio + soxr "HQ"
    1 kHz tone          worst spur -65 dB                  worst spur -102 dB
    3.4 kHz tone        worst spur -43 dB, level -1.2 dB   worst spur -101 dB, level -0.0 dB
    5/6/7 kHz tones     alias at 3/2/1 kHz: -9/-16/-22 dB  alias below the 16-bit floor

Music and prompts mastered at 44.1 or 48 kHz carry plenty above 4 kHz, so miniaudio's resampler
would fold it audibly into the telephone band; soxr is also twice as fast (60 s of 44.1 kHz wav:
22 ms against 46 ms). Decoding streams in chunks so that memory follows the 8 kHz output (at most
`MAX_DURATION_S` of it, 29 MB) rather than the source (a 10 MB mp3 may hold hours of 48 kHz stereo).

Decoding takes milliseconds to seconds of CPU, so the event loop must call `decode_async`.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Final

import miniaudio
import numpy as np
import numpy.typing as npt
import soxr

from appliance.media.audio import RATE, SAMPLE
from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

MAX_DURATION_S: Final = 30 * 60  # longer files are refused: a player this long is a mistake, and 29 MB decoded
SUPPORTED: Final = ("wav", "mp3", "ogg (vorbis)", "flac")
CHUNK_FRAMES: Final = 16384  # source frames per decoding step: ~0.35 s at 48 kHz, a few hundred kB of float32
RESAMPLE_QUALITY: Final = "HQ"  # soxr's 20-bit quality: aliasing ~100 dB down, well below 16-bit output
# A lossless file whose header promises more frames than its data holds was cut short (an interrupted
# upload). A few frames of slack allow for decoders that round the last block.
TRUNCATION_SLACK_FRAMES: Final = 64
SNIFF_BYTES: Final = 512  # enough of the start of a file to tell its format and the codec in an Ogg page

# An Ogg page header (RFC 3533 section 6): "OggS", version, header type, granule position, serial
# number, sequence number, CRC, and the number of segments, whose lengths follow.
_OGG_PAGE: Final = struct.Struct("<4sBBqIIIB")
_OGG_EOS: Final = 0x04  # header-type flag of a stream's last page


class AudioFileError(MediaError, ValueError):
    """A media file that cannot be played: empty, cut short, corrupt, of an unsupported format or too long."""


@dataclass(frozen=True, slots=True)
class Decoded:
    samples: npt.NDArray[np.int16]  # mono, at audio.RATE
    duration_ms: int
    source_format: str  # "wav", "mp3", "ogg" or "flac"
    source_rate: int
    source_channels: int


_INFO: Final = {
    "wav": miniaudio.wav_get_info,
    "mp3": miniaudio.mp3_get_info,
    "ogg": miniaudio.vorbis_get_info,
    "flac": miniaudio.flac_get_info,
}


def sniff(data: bytes) -> str:
    """The format of `data` by its magic bytes: one of "wav", "mp3", "ogg", "flac"; else AudioFileError."""
    head = data[:SNIFF_BYTES]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        # The first page holds the codec's identification header. Opus and Speex are Ogg too, but
        # miniaudio decodes only Vorbis; say so rather than "corrupt".
        if b"\x01vorbis" in head:
            return "ogg"
        codec = "Opus" if b"OpusHead" in head else "Speex" if b"Speex" in head else "an unknown codec"
        raise _unsupported(f"Ogg with {codec}")
    if head[:3] == b"ID3":
        return "mp3"  # an ID3v2 tag; what follows is checked by the decoder
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame sync. Layer bits 00 are reserved in MPEG audio and mean AAC in ADTS.
        if head[1] & 0x06 == 0:
            raise _unsupported("AAC (ADTS)")
        return "mp3"
    raise _unsupported(_describe_unknown(head))


def _describe_unknown(head: bytes) -> str:
    if head[4:8] == b"ftyp":
        return "MP4/M4A (AAC)"
    if head[:4] == b"RIFF":
        return "a RIFF file that is not WAVE"
    if head[:4] in (b"FORM", b".snd"):
        return "AIFF or AU"
    stripped = head.lstrip()
    if stripped[:1] in (b"<", b"{"):
        return "text (HTML, XML or JSON: perhaps an error page)"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary format"
    return "text"


def _unsupported(what: str) -> AudioFileError:
    return AudioFileError(f"unsupported audio format: {what}; supported formats are {', '.join(SUPPORTED)}")


def _wav_truncation(data: bytes) -> tuple[int, int] | None:
    """(promised, present) bytes of a WAV's data chunk when the file ends before the chunk does.

    dr_wav silently clamps a short data chunk to what is there, so this walks the RIFF chunks itself.
    Streaming writers put 0 or 0xFFFFFFFF in the size when they do not know it; that is not a cut.
    """
    pos = 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            present = len(data) - pos - 8
            if size in (0, 0xFFFFFFFF) or size <= present:
                return None
            return size, present
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    return None


def _ogg_truncation(data: bytes) -> str | None:
    """Why an Ogg file is cut short, or None. stb_vorbis plays whatever whole pages there are, so the
    page chain is walked here: a file must end exactly at a page boundary, on an end-of-stream page.
    Bytes after the pages that are not a page (a stray tag) are left to the decoder."""
    pos, flags = 0, 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            return None
        if pos + _OGG_PAGE.size > len(data):
            return f"the page at byte {pos} is cut short"
        _magic, _version, flags, _granule, _serial, _seq, _crc, segments = _OGG_PAGE.unpack_from(data, pos)
        table = data[pos + _OGG_PAGE.size : pos + _OGG_PAGE.size + segments]
        end = pos + _OGG_PAGE.size + segments + sum(table)
        if len(table) < segments or end > len(data):
            return f"the page at byte {pos} is cut short"
        pos = end
    return None if flags & _OGG_EOS else "the stream has no end-of-stream page"


def decode(data: bytes, name_hint: str = "") -> Decoded:
    """Decode a whole file to mono int16 at `audio.RATE`. Blocking: call `decode_async` from the loop.

    `name_hint` (a URL or file name) only labels errors; the format comes from the content.
    """
    if not name_hint:
        return _decode(data)
    try:
        return _decode(data)
    except AudioFileError as e:
        raise AudioFileError(f"{name_hint}: {e}") from e


async def decode_async(data: bytes, name_hint: str = "") -> Decoded:
    """`decode` on a worker thread, so that the event loop and the media tick run on meanwhile."""
    return await asyncio.to_thread(decode, data, name_hint)


def _decode(data: bytes) -> Decoded:
    if not data:
        raise AudioFileError("empty file")
    fmt = sniff(data)
    if fmt == "wav" and (cut := _wav_truncation(data)) is not None:
        raise AudioFileError(f"truncated wav: the data chunk promises {cut[0]} bytes but the file holds {cut[1]}")
    if fmt == "ogg" and (why := _ogg_truncation(data)) is not None:
        raise AudioFileError(f"truncated ogg: {why}")
    try:
        info = _INFO[fmt](data)
    except miniaudio.MiniaudioError as e:
        raise AudioFileError(f"corrupt or truncated {fmt}: the decoder cannot open it ({e})") from e
    if info.nchannels < 1 or info.sample_rate < 1:
        raise AudioFileError(f"corrupt {fmt}: {info.nchannels} channels at {info.sample_rate} Hz")
    max_frames = MAX_DURATION_S * info.sample_rate
    # mp3 and Vorbis lengths are counted by scanning the stream; wav and flac take them from the header
    # (flac may say 0 for unknown). The decoding loop checks again, so a lying header cannot get past.
    if info.num_frames > max_frames:
        raise _too_long(info.num_frames / info.sample_rate)
    samples, frames = _decode_frames(data, fmt, info.nchannels, info.sample_rate, max_frames)
    if frames == 0:
        raise AudioFileError(f"corrupt {fmt}: no audio could be decoded")
    if fmt == "flac" and info.num_frames > frames + TRUNCATION_SLACK_FRAMES:
        raise AudioFileError(f"truncated flac: the header promises {info.num_frames} frames but only {frames} decode")
    return Decoded(
        samples=samples,
        duration_ms=len(samples) * 1000 // RATE,
        source_format=fmt,
        source_rate=info.sample_rate,
        source_channels=info.nchannels,
    )


def _too_long(seconds: float) -> AudioFileError:
    return AudioFileError(f"too long: {seconds:.0f} s of audio, the limit is {MAX_DURATION_S} s")


def _decode_frames(
    data: bytes, fmt: str, channels: int, rate: int, max_frames: int
) -> tuple[npt.NDArray[np.int16], int]:
    """Stream-decode at the source's own rate and channel count (no miniaudio conversion), mix to mono
    by averaging (a full-scale signal on both channels stays full scale) and resample with soxr."""
    try:
        chunks = miniaudio.stream_memory(
            data, miniaudio.SampleFormat.FLOAT32, channels, rate, frames_to_read=CHUNK_FRAMES
        )
    except miniaudio.MiniaudioError as e:
        raise AudioFileError(f"corrupt {fmt}: the decoder cannot open it ({e})") from e
    resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32", quality=RESAMPLE_QUALITY) if rate != RATE else None
    out: list[npt.NDArray[np.float32]] = []
    frames = 0
    try:
        for chunk in chunks:
            block = np.frombuffer(chunk, dtype=np.float32)
            if channels > 1:
                block = block.reshape(-1, channels).mean(axis=1, dtype=np.float32)
            frames += len(block)
            if frames > max_frames:
                raise _too_long(frames / rate)
            out.append(resampler.resample_chunk(block) if resampler else block.copy())
    except miniaudio.MiniaudioError as e:
        raise AudioFileError(f"corrupt {fmt}: decoding failed after {frames} frames ({e})") from e
    finally:
        chunks.close()
    if resampler:
        out.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    mono = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
    # miniaudio's float scale is 1.0 = 32768 (int16 / 32768); clip what the resampler's ringing overshoots.
    pcm = np.clip(np.rint(mono * 32768.0), -32768, 32767).astype(SAMPLE)
    return pcm, frames
