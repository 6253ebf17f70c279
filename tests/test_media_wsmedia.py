"""VoxEngine's WebSocket media format: messages, encodings and the two stream directions, measured on audio."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.audio import FRAME, RATE, SAMPLE
from appliance.media.wsmedia import (
    ENCODINGS,
    MAX_BUFFER_S,
    EncodingError,
    InboundStream,
    MediaEnded,
    MediaMessage,
    MediaStarted,
    MissingFieldError,
    OutboundStream,
    PayloadError,
    StartMessage,
    StopMessage,
    StreamEvent,
    StreamOrderError,
    UnknownEventError,
    WsMediaError,
    WsMediaJsonError,
    encoding_for,
    parse_message,
)

CODED = ["PCM8", "PCM16", "ULAW", "ALAW"]  # every encoding the appliance codes (OPUS is refused)
TONE_HZ = 1000.0
AMP = 0.5


def tone(seconds: float, rate: int = RATE, freq: float = TONE_HZ) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return np.rint(AMP * 32767 * np.sin(2 * np.pi * freq * t)).astype(SAMPLE)


def rms_db(x: npt.NDArray[np.int16]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) / 32768))


def peak_hz(x: npt.NDArray[np.int16], rate: int = RATE) -> float:
    # Zero-padded FFT with a Hann window, parabolic interpolation of the peak: well under 1 Hz here.
    n = len(x) * 8
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * rate / n)


def frames_of(x: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [x[i : i + FRAME] for i in range(0, len(x) - FRAME + 1, FRAME)]


def drain(stream: InboundStream) -> npt.NDArray[np.int16]:
    out = []
    while (frame := stream.next_frame()) is not None:
        out.append(frame)
    return np.concatenate(out) if out else np.zeros(0, dtype=SAMPLE)


class Recorder:
    def __init__(self) -> None:
        self.events: list[StreamEvent] = []

    def __call__(self, event: StreamEvent) -> None:
        self.events.append(event)

    @property
    def names(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def round_trip(name: str, signal: npt.NDArray[np.int16]) -> tuple[list[str], npt.NDArray[np.int16]]:
    out = OutboundStream(name, tag="t")
    messages = [out.start(), *(out.frame(f) for f in frames_of(signal)), out.stop()]
    inbound = InboundStream("t")
    for m in messages:
        inbound.receive(m)
    return messages, drain(inbound)


# --- round trips, measured ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", CODED)
def test_tone_round_trip_keeps_frequency_and_level(name: str) -> None:
    sent = tone(2.0)
    messages, got = round_trip(name, sent)
    assert len(messages) == 2 + 100
    steady = got[800:-800]  # skip the resamplers' edges
    assert abs(peak_hz(steady) - TONE_HZ) < 2
    tolerance = 0.5 if name.startswith("PCM") else 1.0
    assert abs(rms_db(steady) - rms_db(sent)) < tolerance
    if name == "PCM8":
        assert np.array_equal(got, sent)  # no resampler, no codec: bit-exact


def test_pcm16_chunk_joins_have_no_clicks() -> None:
    # A 1 kHz tone at 0.5 full scale moves at most 2*pi*1000/8000*16384 = 12868 per sample; a click at a
    # join (a dropped, repeated or zero-padded chunk) would jump by up to twice the amplitude.
    sent = tone(2.0)
    _, got = round_trip("PCM16", sent)
    limit = 2 * np.pi * TONE_HZ / RATE * AMP * 32768 * 1.05
    steady = got[800:-800].astype(np.int32)
    assert np.max(np.abs(np.diff(steady))) < limit
    # Stricter: the output is the tone itself to within a few LSB (measured 2.2) at every sample, so no
    # join anywhere, even at a zero crossing where a jump would hide, drops or repeats audio.
    t = np.arange(len(steady)) / RATE
    basis = np.stack([np.sin(2 * np.pi * TONE_HZ * t), np.cos(2 * np.pi * TONE_HZ * t)], axis=1)
    fit, *_ = np.linalg.lstsq(basis, steady.astype(np.float64), rcond=None)
    assert np.max(np.abs(steady - basis @ fit)) < 8
    # Every outbound message of the 16 kHz stream is exactly 20 ms: 320 samples, 640 bytes.
    out = OutboundStream("PCM16")
    out.start()
    sizes = {len(MediaMessage.parse(out.frame(f)).payload) for f in frames_of(sent)}
    assert sizes == {640}


def test_pcm16_outbound_is_a_clean_16k_tone_with_30ms_delay() -> None:
    sent = tone(1.0)
    out = OutboundStream("PCM16")
    out.start()
    wire = np.concatenate(
        [np.frombuffer(MediaMessage.parse(out.frame(f)).payload, "<i2") for f in frames_of(sent)]
    ).astype(SAMPLE)
    assert abs(peak_hz(wire[2000:], 16000) - TONE_HZ) < 2
    assert abs(rms_db(wire[2000:]) - rms_db(sent)) < 0.5
    onset = int(np.argmax(np.abs(wire) > 1000))
    assert 400 <= onset <= 520  # soxr's variable-rate delay: 480 samples = 30 ms


# --- the reference's messages ------------------------------------------------------------------------

# Reference section 3.7 (S4 media-streams/format): the start is literal; media and stop show "N", "n",
# "t", "<base64>" and "…" as placeholders, filled in here with concrete values.
REFERENCE_START = '{"event":"start","sequenceNumber":0,"start":{"mediaFormat":{"encoding":"PCM16","sampleRate":16000}}}'
REFERENCE_MEDIA = '{"event":"media","sequenceNumber":1,"media":{"chunk":1,"timestamp":0,"payload":"AAABAP//"}}'
REFERENCE_STOP = '{"event":"stop","sequenceNumber":2,"stop":{"mediaInfo":{"bytesSent":6,"duration":0.02}}}'


@pytest.mark.parametrize("text", [REFERENCE_START, REFERENCE_MEDIA, REFERENCE_STOP])
def test_reference_examples_parse_and_serialize_field_for_field(text: str) -> None:
    message = parse_message(text)
    assert json.loads(message.serialize()) == json.loads(text)
    assert message.serialize() == text  # same key order, compact


def test_reference_examples_fields() -> None:
    start = StartMessage.parse(REFERENCE_START)
    assert (start.encoding.name, start.encoding.rate, start.sequence_number, start.tag) == ("PCM16", 16000, 0, None)
    media = MediaMessage.parse(REFERENCE_MEDIA)
    samples = b"\x00\x00\x01\x00\xff\xff"  # 0, 1, -1 as little-endian int16
    assert (media.sequence_number, media.chunk, media.timestamp, media.payload) == (1, 1, 0, samples)
    stop = StopMessage.parse(REFERENCE_STOP)
    assert (stop.sequence_number, stop.bytes_sent, stop.duration) == (2, 6, 0.02)


def test_outbound_messages_field_for_field() -> None:
    out = OutboundStream("ULAW", tag="caller", custom_parameters={"lang": "en"})
    start = json.loads(out.start())
    assert start == {
        "event": "start",
        "sequenceNumber": 0,
        "start": {
            "mediaFormat": {"encoding": "ULAW", "sampleRate": 8000},
            "tag": "caller",
            "customParameters": '{"lang":"en"}',  # JSON-stringified, as VoxEngine sends it
        },
    }
    medias = [json.loads(out.frame(np.zeros(FRAME, SAMPLE))) for _ in range(3)]
    assert [m["sequenceNumber"] for m in medias] == [1, 2, 3]
    assert [m["media"]["chunk"] for m in medias] == [1, 2, 3]
    assert [m["media"]["timestamp"] for m in medias] == [0, 160, 320]
    assert all(base64.b64decode(m["media"]["payload"]) == b"\xff" * FRAME for m in medias)  # µ-law silence
    assert json.loads(out.stop()) == {
        "event": "stop",
        "sequenceNumber": 4,
        "stop": {"mediaInfo": {"bytesSent": 480, "duration": 0.06}, "tag": "caller"},
    }
    assert StartMessage.parse(start).custom_parameters == {"lang": "en"}


def test_pcm16_timestamps_count_16k_samples() -> None:
    out = OutboundStream("PCM16")
    out.start()
    stamps = [MediaMessage.parse(out.frame(np.zeros(FRAME, SAMPLE))).timestamp for _ in range(3)]
    assert stamps == [0, 320, 640]
    assert json.loads(out.stop())["stop"]["mediaInfo"] == {"bytesSent": 3 * 640, "duration": 0.06}


def test_protobuf_json_style_input_is_accepted() -> None:
    # Proto3 JSON writes uint64 as strings and leaves zero values out.
    media = MediaMessage.parse({"event": "media", "sequenceNumber": "7", "media": {"chunk": "3", "payload": ""}})
    assert (media.sequence_number, media.chunk, media.timestamp, media.payload) == (7, 3, 0, b"")
    assert StopMessage.parse('{"event":"stop"}') == StopMessage()


def test_encoding_table_matches_websocketaudioencoding() -> None:
    table = {name: (e.codec.value, e.rate, e.sample_bytes) for name, e in ENCODINGS.items()}
    assert table == {
        "PCM8": ("pcm16le", 8000, 2),
        "PCM16": ("pcm16le", 16000, 2),
        "ULAW": ("ulaw", 8000, 1),
        "ALAW": ("alaw", 8000, 1),
        "OPUS": ("opus", 48000, 0),
    }
    assert encoding_for("PCM16_8KHZ").name == "PCM8"
    assert encoding_for("PCM16_16KHZ").name == "PCM16"


# --- inbound buffering and events --------------------------------------------------------------------


def start_msg(encoding: str = "PCM8", tag: str | None = "bot") -> str:
    return StartMessage(encoding_for(encoding), 0, tag).serialize()


def media_msg(samples: npt.NDArray[np.int16]) -> str:
    return MediaMessage(samples.astype("<i2").tobytes()).serialize()


def test_faster_than_real_time_input_is_capped_at_10s() -> None:
    events = Recorder()
    stream = InboundStream("bot", events)
    stream.receive(start_msg())
    stream.receive(media_msg(tone(15.0)))  # a TTS service sending 15 s in one go
    assert stream.buffered_samples == MAX_BUFFER_S * RATE
    assert stream.discarded_samples == 5 * RATE
    stream.receive(StopMessage().serialize())
    frames = 0
    while stream.next_frame() is not None:
        frames += 1
    assert frames == 500
    assert stream.next_frame() is None
    assert events.events == [MediaStarted("bot", "PCM8", None), MediaEnded("bot", 10.0, "stop")]


def test_media_ended_after_stop_waits_for_the_buffer_to_drain() -> None:
    events = Recorder()
    stream = InboundStream("bot", events)
    stream.receive(start_msg())
    stream.receive(media_msg(tone(0.1)))
    stream.receive(StopMessage().serialize())
    assert events.names == ["MediaStarted"]
    assert len(drain(stream)) == 800
    assert events.names == ["MediaStarted", "MediaEnded"]
    assert stream.state == "idle"


def test_partial_final_chunk_is_padded() -> None:
    stream = InboundStream()
    stream.receive(start_msg())
    stream.receive(media_msg(np.full(FRAME + 50, 1000, SAMPLE)))
    stream.receive(StopMessage().serialize())
    first, second = stream.next_frame(), stream.next_frame()
    assert first is not None and second is not None and stream.next_frame() is None
    assert np.all(second[:50] == 1000) and np.all(second[50:] == 0)


def test_partial_frame_waits_one_tick_for_more_input_while_running() -> None:
    stream = InboundStream()
    stream.receive(start_msg())
    stream.receive(media_msg(np.full(240, 7, SAMPLE)))  # a 30 ms chunk
    assert stream.next_frame() is not None
    assert stream.next_frame() is None  # 80 samples wait for the next chunk instead of being padded
    stream.receive(media_msg(np.full(240, 7, SAMPLE)))
    assert [len(f) for f in (stream.next_frame(), stream.next_frame()) if f is not None] == [FRAME, FRAME]
    assert stream.next_frame() is None  # all 480 samples played as three whole frames, none padded


def test_clear_empties_the_buffer() -> None:
    stream = InboundStream()
    stream.receive(start_msg())
    stream.receive(media_msg(tone(3.0)))
    assert stream.clear() == 3 * RATE
    assert stream.buffered_samples == 0 and stream.next_frame() is None
    stream.receive(media_msg(tone(0.02)))  # the stream goes on after a barge-in
    assert stream.next_frame() is not None


def test_one_second_without_input_fires_media_ended_and_new_input_restarts() -> None:
    events = Recorder()
    stream = InboundStream("bot", events)
    stream.receive(start_msg())
    stream.receive(media_msg(tone(0.2)))
    now = 0.0
    for _ in range(100):  # 2 s of ticks
        stream.next_frame()
        stream.tick(now)
        now += 0.02
    ended = [e for e in events.events if isinstance(e, MediaEnded)]
    assert len(ended) == 1 and ended[0].reason == "silence" and ended[0].duration == pytest.approx(0.2)
    stream.receive(media_msg(tone(0.02)))
    assert events.names == ["MediaStarted", "MediaEnded", "MediaStarted"]


def test_slow_playout_of_a_full_buffer_is_not_silence() -> None:
    events = Recorder()
    stream = InboundStream("bot", events)
    stream.receive(start_msg())
    stream.receive(media_msg(tone(3.0)))
    for i in range(150):  # 3 s of ticks, no input after the first
        stream.next_frame()
        stream.tick(i * 0.02)
    assert events.names == ["MediaStarted"]


def test_codec_change_needs_stop_then_start() -> None:
    events = Recorder()
    stream = InboundStream("bot", events)
    stream.receive(start_msg("ULAW"))
    with pytest.raises(StreamOrderError, match="stop first"):
        stream.receive(start_msg("PCM16"))
    stream.receive(StopMessage().serialize())
    stream.receive(start_msg("PCM16"))
    assert stream.encoding is not None and stream.encoding.name == "PCM16"
    stream.receive(media_msg(tone(0.5, 16000)))
    stream.receive(StopMessage().serialize())
    got = drain(stream)
    assert abs(len(got) - 4000) <= FRAME and abs(peak_hz(got[400:-400]) - TONE_HZ) < 2
    assert events.names == ["MediaStarted", "MediaEnded", "MediaStarted", "MediaEnded"]


# --- bad input ---------------------------------------------------------------------------------------

BAD: list[tuple[Any, type[WsMediaError], str]] = [
    ("{not json", WsMediaJsonError, "not JSON"),
    ("[1, 2]", WsMediaJsonError, "JSON object, got list"),
    ('{"sequenceNumber": 0}', MissingFieldError, "no 'event'"),
    ('{"event": "mark"}', UnknownEventError, "unknown event 'mark'"),
    ('{"event": "start"}', MissingFieldError, r"start\.start must be an object"),
    ('{"event": "start", "start": {}}', MissingFieldError, "mediaFormat must be an object"),
    ('{"event": "start", "start": {"mediaFormat": {}}}', MissingFieldError, "encoding must be a string"),
    ('{"event": "start", "start": {"mediaFormat": {"encoding": "MP3"}}}', EncodingError, "unknown encoding 'MP3'"),
    ('{"event": "start", "start": {"mediaFormat": {"encoding": "OPUS"}}}', EncodingError, "not available"),
    (
        '{"event": "start", "start": {"mediaFormat": {"encoding": "PCM16", "sampleRate": 8000}}}',
        EncodingError,
        "16000 Hz, not sampleRate 8000; use PCM8",
    ),
    (
        '{"event": "start", "start": {"mediaFormat": {"encoding": "PCM8"}, "customParameters": "{x"}}',
        MissingFieldError,
        "JSON-stringified",
    ),
    ('{"event": "media", "media": {}}', MissingFieldError, "payload must be a string, got nothing"),
    ('{"event": "media", "media": {"payload": "!!!!"}}', PayloadError, "not base64"),
    ('{"event": "media", "media": {"payload": "", "chunk": -1}}', MissingFieldError, "chunk must be an unsigned"),
    ('{"event": "media", "media": {"payload": "", "chunk": true}}', MissingFieldError, "chunk must be an unsigned"),
    ('{"event": "stop", "stop": {"mediaInfo": {"duration": "x"}}}', MissingFieldError, "duration must be"),
]


@pytest.mark.parametrize(("text", "error", "message"), BAD)
def test_bad_messages_are_refused_precisely(text: str, error: type[WsMediaError], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_message(text)
    assert issubclass(error, ValueError)


BAD_STREAM: list[tuple[list[str], type[WsMediaError], str]] = [
    ([media_msg(tone(0.02))], StreamOrderError, "media before start"),
    ([StopMessage().serialize()], StreamOrderError, "stop without a running stream"),
    ([start_msg(), StopMessage().serialize(), media_msg(tone(0.02))], StreamOrderError, "media before start"),
    ([start_msg(tag="other")], StreamOrderError, "tag 'other' reached the stream for tag 'bot'"),
    ([start_msg(), MediaMessage(b"\x00" * 3).serialize()], PayloadError, "3 bytes is not a whole number of 2-byte"),
]


@pytest.mark.parametrize(("messages", "error", "message"), BAD_STREAM)
def test_bad_streams_are_refused_precisely(messages: list[str], error: type[WsMediaError], message: str) -> None:
    stream = InboundStream("bot")
    with pytest.raises(error, match=message):
        for m in messages:
            stream.receive(m)


def test_outbound_misuse_is_refused() -> None:
    out = OutboundStream("PCM8")
    with pytest.raises(StreamOrderError, match="call start"):
        out.frame(np.zeros(FRAME, SAMPLE))
    out.start()
    with pytest.raises(WsMediaError, match="one frame of 160 int16"):
        out.frame(np.zeros(FRAME + 1, SAMPLE))
    out.stop()
    with pytest.raises(StreamOrderError):
        out.stop()
