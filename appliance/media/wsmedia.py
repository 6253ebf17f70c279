"""Audio over a WebSocket in VoxEngine's JSON start/media/stop format (reference section 3.7).

`call.sendMediaTo(ws, {encoding, tag, customParameters})` becomes an `OutboundStream`: one start
message, one media message per 20 ms tick, one stop. `ws.sendMediaTo(call, {tag})` becomes an
`InboundStream`: the peer's start/media/stop are decoded to the internal format, buffered (peers such
as TTS services send faster than real time) and handed out one `FRAME` per tick. This module is only
codec, framing and buffering; the WebSocket connection and the engine wire it up.

Decisions the reference leaves open:

* `chunk` counts media messages from 1, `timestamp` counts samples at the encoding's own rate from 0
  (RTP semantics, as the reference says), `sequenceNumber` counts every message of a stream from 0.
* `duration` in stop.mediaInfo and in `MediaEnded` is in seconds (VoxEngine's WebSocketMediaInfo
  documents only "number"; seconds is what its other durations use).
* Inbound numbers may be JSON strings and may be absent: the format is a protobuf message, and the
  protobuf JSON mapping writes uint64 as strings and omits zero values. Payload and encoding are
  required: without them there is nothing to play.
* MEDIA_ENDED after a stop fires when the buffer has drained, i.e. when the call has heard the last
  sample: scenarios use it for turn-taking ("the bot finished speaking"), and firing it on arrival of
  the stop would be up to 10 s early.
* OPUS is in the table (VoxEngine has it) but refused: the appliance ships no Opus codec.

Resampling (PCM16 is 16 kHz, the mixer 8 kHz) uses soxr's streaming resampler in variable-rate mode.
Its fixed-rate mode works on large blocks: with 20 ms chunks it emits nothing for 100 ms, then a
burst, which would break "one message per tick" and underrun the inbound buffer. The variable-rate
mode emits every chunk with a constant delay and keeps ~80 dB of alias rejection (measured):
8 -> 16 kHz delays by 30 ms (outbound), 16 -> 8 kHz by 15 ms (inbound).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import soxr

from appliance.media.audio import FRAME, RATE, SAMPLE, TICK_MS, Frame
from appliance.media.codecs import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

MAX_BUFFER_S: Final = 10  # VoxEngine's inbound cap; audio beyond it is discarded (reference 3.7)
MAX_BUFFER_SAMPLES: Final = MAX_BUFFER_S * RATE
SILENCE_TIMEOUT_S: Final = 1.0  # no input and nothing buffered for this long fires MEDIA_ENDED
PARTIAL_HOLD_TICKS: Final = 1  # ticks a part-frame waits for more input before it is padded and played
UINT64_MAX: Final = 2**64 - 1  # chunk and timestamp are uint64 in the proto
RESAMPLE_QUALITY: Final = "HQ"
JSON_SEPARATORS: Final = (",", ":")


class WsMediaError(MediaError, ValueError):
    """A media message or stream operation that cannot be honoured; the message says which field."""


class WsMediaJsonError(WsMediaError):
    """The text is not a JSON object."""


class UnknownEventError(WsMediaError):
    """`event` is not start, media or stop."""


class MissingFieldError(WsMediaError):
    """A required field is absent or has the wrong type."""


class PayloadError(WsMediaError):
    """The payload is not base64, or not a whole number of samples."""


class EncodingError(WsMediaError):
    """An encoding name VoxEngine does not have, one this appliance cannot code, or a wrong rate."""


class StreamOrderError(WsMediaError):
    """A message or call out of order: media before start, start while running, frame after stop."""


# --- encodings --------------------------------------------------------------------------------------


class Codec(enum.Enum):
    PCM16LE = "pcm16le"  # signed 16-bit little-endian, as every VoxEngine PCM stream
    ULAW = "ulaw"
    ALAW = "alaw"
    OPUS = "opus"


@dataclass(frozen=True)
class Encoding:
    name: str  # the wire value of WebSocketAudioEncoding
    codec: Codec
    rate: int
    sample_bytes: int  # 0: variable (compressed frames)
    supported: bool = True

    @property
    def chunk_samples(self) -> int:
        return self.rate * TICK_MS // 1000


# WebSocketAudioEncoding (engine/data/voxengine-symbols.json): five wire values, two of them also
# reachable under a second enum key (PCM16_8KHZ = 'PCM8', PCM16_16KHZ = 'PCM16').
ENCODINGS: Final[dict[str, Encoding]] = {
    "PCM8": Encoding("PCM8", Codec.PCM16LE, 8000, 2),
    "PCM16": Encoding("PCM16", Codec.PCM16LE, 16000, 2),
    "ULAW": Encoding("ULAW", Codec.ULAW, 8000, 1),
    "ALAW": Encoding("ALAW", Codec.ALAW, 8000, 1),
    "OPUS": Encoding("OPUS", Codec.OPUS, 48000, 0, supported=False),
}
ENCODING_ALIASES: Final[dict[str, str]] = {"PCM16_8KHZ": "PCM8", "PCM16_16KHZ": "PCM16"}


def encoding_for(name: str) -> Encoding:
    """The encoding for a wire value (or enum key alias); refuses unknown and unsupported ones."""
    encoding = ENCODINGS.get(ENCODING_ALIASES.get(name, name))
    if encoding is None:
        raise EncodingError(f"unknown encoding {name!r}; WebSocketAudioEncoding has {', '.join(ENCODINGS)}")
    if not encoding.supported:
        raise EncodingError(f"encoding {name} is not available on this appliance (no Opus codec)")
    return encoding


def encode_samples(encoding: Encoding, samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples at the encoding's rate -> payload bytes."""
    if encoding.codec is Codec.ULAW:
        return ulaw_encode(samples).tobytes()
    if encoding.codec is Codec.ALAW:
        return alaw_encode(samples).tobytes()
    return samples.astype("<i2").tobytes()


def decode_payload(encoding: Encoding, payload: bytes) -> npt.NDArray[np.int16]:
    """Payload bytes -> int16 samples at the encoding's rate."""
    if len(payload) % encoding.sample_bytes:
        raise PayloadError(
            f"{encoding.name} payload of {len(payload)} bytes is not a whole number of "
            f"{encoding.sample_bytes}-byte samples"
        )
    codes = np.frombuffer(payload, dtype=np.uint8)
    if encoding.codec is Codec.ULAW:
        return ulaw_decode(codes)
    if encoding.codec is Codec.ALAW:
        return alaw_decode(codes)
    return np.frombuffer(payload, dtype="<i2").astype(SAMPLE)


# --- messages ---------------------------------------------------------------------------------------


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=JSON_SEPARATORS)


def _load(message: str | bytes | dict[str, Any], event: str | None = None) -> dict[str, Any]:
    if isinstance(message, dict):
        obj: object = message
    else:
        try:
            obj = json.loads(message)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WsMediaJsonError(f"media message is not JSON: {e}") from e
    if not isinstance(obj, dict):
        raise WsMediaJsonError(f"media message must be a JSON object, got {type(obj).__name__}")
    got = obj.get("event")
    if not isinstance(got, str):
        raise MissingFieldError("media message has no 'event' string")
    if got not in _EVENTS:
        raise UnknownEventError(f"unknown event {got!r}; expected one of {', '.join(_EVENTS)}")
    if event is not None and got != event:
        raise UnknownEventError(f"expected a {event!r} message, got {got!r}")
    return obj


def _object(obj: dict[str, Any], key: str, where: str, required: bool = True) -> dict[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise MissingFieldError(f"{where}.{key} must be an object, got {_kind(value)}")
    return value


def _uint(obj: dict[str, Any], key: str, where: str, required: bool = False) -> int:
    value = obj.get(key)
    if value is None and not required:
        return 0  # protobuf JSON omits zero values
    # bool is an int in Python but never a number on the wire; uint64 may arrive as a decimal string.
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT64_MAX:
        raise MissingFieldError(f"{where}.{key} must be an unsigned integer, got {_kind(value)}")
    return value


def _str(obj: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MissingFieldError(f"{where}.{key} must be a string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r:.40}"


@dataclass(frozen=True)
class StartMessage:
    encoding: Encoding
    sequence_number: int = 0
    tag: str | None = None
    custom_parameters: Any = None  # any JSON value; on the wire a JSON string

    @classmethod
    def parse(cls, message: str | bytes | dict[str, Any]) -> StartMessage:
        obj = _load(message, "start")
        start = _object(obj, "start", "start")
        fmt = _object(start, "mediaFormat", "start.start")
        name = _str(fmt, "encoding", "start.mediaFormat", required=True)
        assert name is not None
        encoding = encoding_for(name)
        rate = _uint(fmt, "sampleRate", "start.mediaFormat")
        if rate and rate != encoding.rate:
            others = [e.name for e in ENCODINGS.values() if e.codec is encoding.codec and e.rate == rate]
            hint = f"; use {others[0]}" if others else ""
            raise EncodingError(f"{encoding.name} is {encoding.rate} Hz, not sampleRate {rate}{hint}")
        params = start.get("customParameters")
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError as e:
                raise MissingFieldError(f"start.customParameters must be JSON-stringified: {e}") from e
        return cls(encoding, _uint(obj, "sequenceNumber", "start"), _str(start, "tag", "start.start"), params)

    def serialize(self) -> str:
        start: dict[str, Any] = {"mediaFormat": {"encoding": self.encoding.name, "sampleRate": self.encoding.rate}}
        if self.tag is not None:
            start["tag"] = self.tag
        if self.custom_parameters is not None:
            start["customParameters"] = _dumps(self.custom_parameters)
        return _dumps({"event": "start", "sequenceNumber": self.sequence_number, "start": start})


@dataclass(frozen=True)
class MediaMessage:
    payload: bytes
    sequence_number: int = 0
    chunk: int = 0
    timestamp: int = 0
    tag: str | None = None  # VoxEngine names MediaEvent.tag; sent only when the stream has one

    @classmethod
    def parse(cls, message: str | bytes | dict[str, Any]) -> MediaMessage:
        obj = _load(message, "media")
        media = _object(obj, "media", "media")
        text = _str(media, "payload", "media.media", required=True)
        assert text is not None
        try:
            payload = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as e:
            raise PayloadError(f"media.payload is not base64 ({e}): {text:.40}") from e
        return cls(
            payload,
            _uint(obj, "sequenceNumber", "media"),
            _uint(media, "chunk", "media.media"),
            _uint(media, "timestamp", "media.media"),
            _str(media, "tag", "media.media"),
        )

    def serialize(self) -> str:
        media: dict[str, Any] = {"chunk": self.chunk, "timestamp": self.timestamp}
        media["payload"] = base64.b64encode(self.payload).decode("ascii")
        if self.tag is not None:
            media["tag"] = self.tag
        return _dumps({"event": "media", "sequenceNumber": self.sequence_number, "media": media})


@dataclass(frozen=True)
class StopMessage:
    sequence_number: int = 0
    bytes_sent: int = 0
    duration: float = 0.0  # seconds
    tag: str | None = None

    @classmethod
    def parse(cls, message: str | bytes | dict[str, Any]) -> StopMessage:
        obj = _load(message, "stop")
        stop = _object(obj, "stop", "stop", required=False)
        info = _object(stop, "mediaInfo", "stop.stop", required=False)
        duration = info.get("duration", 0)
        if not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0:
            raise MissingFieldError(f"stop.mediaInfo.duration must be a non-negative number, got {_kind(duration)}")
        return cls(
            _uint(obj, "sequenceNumber", "stop"),
            _uint(info, "bytesSent", "stop.mediaInfo"),
            float(duration),
            _str(stop, "tag", "stop.stop"),
        )

    def serialize(self) -> str:
        stop: dict[str, Any] = {"mediaInfo": {"bytesSent": self.bytes_sent, "duration": self.duration}}
        if self.tag is not None:
            stop["tag"] = self.tag
        return _dumps({"event": "stop", "sequenceNumber": self.sequence_number, "stop": stop})


Message = StartMessage | MediaMessage | StopMessage
_EVENTS: Final[dict[str, type[Message]]] = {"start": StartMessage, "media": MediaMessage, "stop": StopMessage}


def parse_message(message: str | bytes | dict[str, Any]) -> Message:
    """Any of the three messages, by its `event`."""
    obj = _load(message)
    return _EVENTS[obj["event"]].parse(obj)


# --- streams ----------------------------------------------------------------------------------------


class _Fifo:
    """int16 samples in arrival order; pops take exactly what is asked for."""

    def __init__(self) -> None:
        self._parts: deque[npt.NDArray[np.int16]] = deque()
        self.size = 0

    def push(self, samples: npt.NDArray[np.int16]) -> None:
        if len(samples):
            self._parts.append(samples)
            self.size += len(samples)

    def pop(self, n: int) -> npt.NDArray[np.int16]:
        """Up to n samples."""
        out: list[npt.NDArray[np.int16]] = []
        want = min(n, self.size)
        self.size -= want
        while want:
            part = self._parts.popleft()
            if len(part) > want:
                self._parts.appendleft(part[want:])
                part = part[:want]
            out.append(part)
            want -= len(part)
        return np.concatenate(out) if out else np.zeros(0, dtype=SAMPLE)

    def clear(self) -> int:
        dropped, self.size = self.size, 0
        self._parts.clear()
        return dropped


class _Resampler:
    """A soxr stream on int16 samples: soxr's type stubs only declare float32, hence the Any."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        # vr=True: see the module docstring (fixed-rate mode emits 100 ms bursts).
        self._stream: Any = soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16", quality=RESAMPLE_QUALITY, vr=True)

    def __call__(self, samples: npt.NDArray[np.int16], last: bool = False) -> npt.NDArray[np.int16]:
        out: npt.NDArray[np.int16] = self._stream.resample_chunk(samples, last=last)
        return out


def _resampler(rate_in: int, rate_out: int) -> _Resampler | None:
    return None if rate_in == rate_out else _Resampler(rate_in, rate_out)


class OutboundStream:
    """The call's audio to the socket: start(), then frame() once per tick, then stop()."""

    def __init__(self, encoding: str | Encoding, tag: str | None = None, custom_parameters: Any = None) -> None:
        self.encoding = encoding if isinstance(encoding, Encoding) else encoding_for(encoding)
        self.tag = tag
        self.custom_parameters = custom_parameters
        self._resampler = _resampler(RATE, self.encoding.rate)
        self._pending = _Fifo()  # resampled audio not sent yet
        self._sequence = 0
        self._chunk = 0
        self._samples_sent = 0  # at the encoding's rate: the next timestamp
        self.bytes_sent = 0
        self._state = "new"

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence - 1

    def start(self) -> str:
        if self._state != "new":
            raise StreamOrderError(f"stream {self.tag!r} is already {self._state}")
        self._state = "running"
        return StartMessage(self.encoding, self._next_sequence(), self.tag, self.custom_parameters).serialize()

    def frame(self, frame: Frame) -> str:
        """One 20 ms media message for one tick's frame at RATE."""
        if self._state != "running":
            raise StreamOrderError(f"frame() on a stream that is {self._state}; call start() first")
        if frame.dtype != SAMPLE or frame.shape != (FRAME,):
            raise WsMediaError(f"expected one frame of {FRAME} int16 samples, got {frame.dtype} {frame.shape}")
        if self._resampler is None:
            samples = frame
        else:
            self._pending.push(self._resampler(frame))
            want = self.encoding.chunk_samples
            # The resampler's delay shows as a shortfall on the first two ticks only (it then emits
            # exactly one chunk per frame); leading silence fills it, so every message is 20 ms.
            short = want - self._pending.size
            samples = self._pending.pop(want)
            if short > 0:
                samples = np.concatenate([np.zeros(short, dtype=SAMPLE), samples])
        payload = encode_samples(self.encoding, samples)
        self._chunk += 1
        message = MediaMessage(payload, self._next_sequence(), self._chunk, self._samples_sent, self.tag)
        self._samples_sent += len(samples)
        self.bytes_sent += len(payload)
        return message.serialize()

    @property
    def duration(self) -> float:
        return self._samples_sent / self.encoding.rate

    def stop(self) -> str:
        """The stop message. Audio still inside the resampler (its 30 ms delay) is not sent."""
        if self._state != "running":
            raise StreamOrderError(f"stop() on a stream that is {self._state}")
        self._state = "stopped"
        return StopMessage(self._next_sequence(), self.bytes_sent, round(self.duration, 3), self.tag).serialize()


@dataclass(frozen=True)
class MediaStarted:
    """MEDIA_STARTED: a start arrived (or input resumed after a silence-ended pause)."""

    tag: str | None
    encoding: str
    custom_parameters: Any


@dataclass(frozen=True)
class MediaEnded:
    """MEDIA_ENDED: the last audio after a stop has been played, or SILENCE_TIMEOUT_S passed without any."""

    tag: str | None
    duration: float  # seconds of this stream's audio played out
    reason: str  # "stop" or "silence"


StreamEvent = MediaStarted | MediaEnded


class _In(enum.Enum):
    IDLE = "idle"  # before the first start, or after a stop has drained
    RUNNING = "running"  # between start and stop
    PAUSED = "paused"  # running, but MEDIA_ENDED fired after SILENCE_TIMEOUT_S without input
    DRAINING = "draining"  # stop received, buffered audio still playing


class InboundStream:
    """The socket's audio to a call, for one tag: receive() the peer's messages as they come, call
    next_frame() and tick(now) once per tick. Events go to `on_event`."""

    def __init__(self, tag: str | None = None, on_event: Callable[[StreamEvent], None] | None = None) -> None:
        self.tag = tag
        self._on_event = on_event or (lambda event: None)
        self._buffer = _Fifo()
        self._state = _In.IDLE
        self._start: StartMessage | None = None
        self._resampler: _Resampler | None = None
        self._fed = False  # input arrived since the last tick()
        self._quiet_since: float | None = None
        self._held = 0  # ticks a part-frame has waited
        self._played = 0  # samples of the current stream handed out
        self.discarded_samples = 0  # over the stream's life, for the panel and the log

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def encoding(self) -> Encoding | None:
        return self._start.encoding if self._start else None

    @property
    def buffered_samples(self) -> int:
        return self._buffer.size

    def receive(self, message: str | bytes | dict[str, Any]) -> None:
        parsed = parse_message(message)
        tag = parsed.tag
        if tag is not None and self.tag is not None and tag != self.tag:
            raise StreamOrderError(f"{type(parsed).__name__} for tag {tag!r} reached the stream for tag {self.tag!r}")
        if isinstance(parsed, StartMessage):
            self._on_start(parsed)
        elif isinstance(parsed, MediaMessage):
            self._on_media(parsed)
        else:
            self._on_stop()

    def _on_start(self, start: StartMessage) -> None:
        if self._state in (_In.RUNNING, _In.PAUSED):
            raise StreamOrderError(
                f"start while stream {self.tag!r} is running; send stop first (changing codec needs stop + start)"
            )
        if self._state is _In.DRAINING:
            # The previous stream's tail keeps playing ahead of the new audio, but its MEDIA_ENDED goes
            # now so that the events keep alternating.
            self._end("stop")
        self._start = start
        self._resampler = _resampler(start.encoding.rate, RATE)
        self._played = 0
        self._begin()

    def _begin(self) -> None:
        assert self._start is not None
        self._state = _In.RUNNING
        self._on_event(MediaStarted(self.tag, self._start.encoding.name, self._start.custom_parameters))

    def _on_media(self, media: MediaMessage) -> None:
        if self._start is None or self._state is _In.IDLE:
            raise StreamOrderError(f"media before start on stream {self.tag!r}")
        if self._state is _In.DRAINING:
            raise StreamOrderError(f"media after stop on stream {self.tag!r}; send a new start first")
        samples = decode_payload(self._start.encoding, media.payload)
        if self._state is _In.PAUSED:
            self._begin()
        self._fed = True
        self._append(self._resampler(samples) if self._resampler else samples)

    def _append(self, samples: npt.NDArray[np.int16]) -> None:
        room = MAX_BUFFER_SAMPLES - self._buffer.size
        if len(samples) > room:
            # The newest audio goes: what is buffered is already promised to the listener in order.
            self.discarded_samples += len(samples) - room
            log.info("stream %r: buffer full (%d s), %d samples discarded", self.tag, MAX_BUFFER_S, len(samples) - room)
            samples = samples[:room]
        self._buffer.push(samples)

    def _on_stop(self) -> None:
        if self._state is _In.IDLE or self._state is _In.DRAINING:
            raise StreamOrderError(f"stop without a running stream {self.tag!r}")
        if self._resampler is not None:
            self._append(self._resampler(np.zeros(0, dtype=SAMPLE), last=True))
            self._resampler = None
        was_paused = self._state is _In.PAUSED
        self._state = _In.DRAINING
        if was_paused or self._buffer.size == 0:
            self._finish(announce=not was_paused)

    def next_frame(self) -> Frame | None:
        """This tick's FRAME samples, or None when nothing is buffered."""
        size = self._buffer.size
        if size == 0:
            return None
        if size < FRAME and self._state is not _In.DRAINING and self._held < PARTIAL_HOLD_TICKS:
            # A real-time peer whose chunks are not 20 ms leaves a part-frame now and then; waiting a
            # tick for the rest plays it without a gap, and a truly final part is padded next tick.
            self._held += 1
            return None
        self._held = 0
        frame = self._buffer.pop(FRAME)
        self._played += len(frame)
        if len(frame) < FRAME:
            frame = np.concatenate([frame, np.zeros(FRAME - len(frame), dtype=SAMPLE)])
        if self._state is _In.DRAINING and self._buffer.size == 0:
            self._finish(announce=True)
        return frame

    def tick(self, now: float) -> None:
        """The clock, once per tick: fires MEDIA_ENDED after SILENCE_TIMEOUT_S without input or audio."""
        if self._fed or self._buffer.size or self._quiet_since is None:
            self._quiet_since = now
            self._fed = False
        elif self._state is _In.RUNNING and now - self._quiet_since >= SILENCE_TIMEOUT_S:
            self._state = _In.PAUSED
            self._on_event(MediaEnded(self.tag, self._played / RATE, "silence"))

    def clear(self) -> int:
        """clearMediaBuffer: drop everything buffered (barge-in); returns the samples dropped."""
        dropped = self._buffer.clear()
        self._held = 0
        if self._resampler is not None and self._start is not None:
            # The resampler holds its last 15 ms of input: a fresh one keeps it from leaking out later.
            self._resampler = _resampler(self._start.encoding.rate, RATE)
        if self._state is _In.DRAINING:
            self._finish(announce=True)
        return dropped

    def _finish(self, announce: bool) -> None:
        if announce:
            self._end("stop")
        self._state = _In.IDLE

    def _end(self, reason: str) -> None:
        self._on_event(MediaEnded(self.tag, self._played / RATE, reason))
