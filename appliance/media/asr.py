"""Offline speech recognition: the audio side of `VoxEngine.createASR()` + `call.sendMediaTo(asr)`.

The media tick runs on the event loop every 20 ms, so `Recognizer.feed()` only copies the frame into
a bounded queue. One `AsrThread` shared by all recognizers owns a worker process (multiprocessing,
"spawn") that runs the voice activity detection and the decoding: pocketsphinx never releases the
GIL, so decoding on a thread of this process made the tick late by 100+ ms with 10 free-speech
streams. A sender thread writes the queued frames to the worker over a pipe, a receiver thread reads
its events back and hands them to the loop with `call_soon_threadsafe`. When recognition falls
behind by `QUEUE_LIMIT_FRAMES`, frames are dropped and counted, and the tick never waits. If the
worker dies, every live recognizer gets one "ASRError".

Per recognizer: pocketsphinx's `Endpointer` (WebRTC-style VAD, 20 ms frames at our 8 kHz) finds
speech; "CaptureStarted" when it starts, "SpeechCaptured" when it ends, then "Result" with the
decoder's best hypothesis. Recognition continues after a Result unless `single_utterance`.

Sample rate: the only local model (pocketsphinx's bundled en-us) is trained at 16 kHz, with mel
filters up to 6800 Hz. Two ways to feed it phone audio were measured by tools/bench/asr_accuracy.py
on espeak-ng phrases through PCMU: upsampling the 8 kHz speech with a streaming soxr resampler
(the top filters see no energy), or decoding natively at 8 kHz with `-upperf 3500 -nfft 256` (the
filter bank no longer matches the one the model was trained on). Upsampling won clearly (word
accuracy, free speech 37% vs 0%, digits grammar 34% vs 11%), so `SAMPLE_MODE` is "16k"; "8k" stays
for the bench. Both are poor because the model needs the 4-8 kHz band for fricatives ("six",
"seven", "zero" are the digits it misses); yes/no and short word lists work. A real 8 kHz acoustic
model (CMU's en-us-8khz) would be the fix; none ships with pocketsphinx.

Cost: ~0.2 s of CPU per second of audio with free speech, ~0.035 with a grammar (RTF, this machine),
all in the one ASR worker process: a few concurrent free-speech streams saturate it, then frames drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import re
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Literal, cast

import numpy as np
import soxr
from pocketsphinx import Decoder, Endpointer, get_model_path

from appliance.media.audio import FRAME, RATE, Frame
from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

SampleMode = Literal["16k", "8k"]
SAMPLE_MODE: SampleMode = "16k"  # chosen by measurement, see the module docstring
MODEL_RATE = 16000  # what the bundled en-us acoustic model was trained on
NATIVE_UPPER_HZ = 3500  # the "8k" mode's top filter edge: G.711 passes up to ~3.4 kHz
NATIVE_NFFT = 256  # 25.6 ms frames at 8 kHz hold one 25 ms analysis window

LANGUAGES = ("en",)  # languages with a local model
LANGUAGE_NAMES = {"en": "English"}

# Frames waiting for the ASR worker, all recognizers together: 60 s of one caller, or 3 s of 20.
# Decoding costs ~0.3 s of CPU per second of speech, so a queue this deep means the CPU is saturated;
# dropping is better than answering minutes late and growing memory on a small board.
QUEUE_LIMIT_FRAMES = 3000
STOP_TIMEOUT_S = 5.0  # how long stop() waits for the worker process to finish its current batch
SEND_BATCH_ITEMS = 50  # queue items per pipe write: 16 KB of frames, a fraction of the 64 KB pipe buffer
DECODER_POOL_LIMIT = 2  # idle decoders kept for reuse: each costs ~0.3 s to load and ~30 MB
VAD_WINDOW_S = 0.3  # the endpointer decides on this much audio: the end of speech is heard this late
VAD_RATIO = 0.9  # share of the window that must be speech (or non-speech) to switch
VAD_MODE = 0  # the WebRTC VAD's aggressiveness 0..3: 0 (loose) keeps soft word endings
MAX_UTTERANCE_S = 60.0  # longer speech gets a Result every minute, as Voximplant does
# The cepstral mean each utterance starts from (16k mode). The model's default (40,3,-1,0,...) is for
# wideband microphones; band-limited G.711 speech upsampled has a very different mean, and live CMN
# needs seconds to get there, so the first words of every short answer were lost. This is what live
# CMN converged to over the bench's PCMU phrases; starting from it lifted a fresh decoder's word
# accuracy from 3% to 37% (free speech) and 14% to 34% (digits) in that measurement.
PHONE_CMN_INIT = "55.71,27.98,-37.75,56.78,-29.27,1.40,3.70,-39.58,16.35,-18.11,9.44,3.12,-20.92"
INTERIM_INTERVAL_S = 0.5  # speech between two partial hypotheses, each costs a search traceback
MAX_GRAMMAR_WORDS = 1000  # a words() grammar larger than this is a dictation task: use free speech

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh")
_WORD = re.compile(r"[a-z][a-z']*")
_FILLER = re.compile(r"^(<.*>|\[.*\])$")  # <s>, </s>, <sil>, [NOISE]: not words
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:$|[-_])")

EventSink = Callable[[str, dict[str, object]], None]


class AsrError(MediaError, ValueError):
    """A recognition request that cannot be honoured."""


def language_for(profile_or_lang: str) -> str | None:
    """The local model for an ASRProfileList member, an ASRLanguage value or a locale; None if none.

    Profile members are opaque in the typings, so the engine may spell them "ASRProfileList.Google.en_US",
    "Google.en_US" or "en_US": the locale is the last dotted part. ASRLanguage values look like "en-US"
    or "cmn-Hans-CN"; Deepgram has bare languages ("en"). Only the language subtag matters here.
    """
    locale = profile_or_lang.strip().rsplit(".", 1)[-1]
    match = _LOCALE.match(locale)
    if match is None:
        return None  # "auto" (Yandex) and anything else without a locale
    language = match.group(1).lower()
    return language if language in LANGUAGES else None


def unsupported_message(profile_or_lang: str) -> str:
    """The ASRError text for a profile that `language_for()` maps to None."""
    supported = ", ".join(LANGUAGE_NAMES[language] for language in LANGUAGES)
    return f"language {profile_or_lang} has no local model; offline ASR supports: {supported}"


@dataclass(frozen=True)
class Grammar:
    """A JSGF grammar restricting what the recognizer may hear; `None` instead means free speech."""

    name: str
    jsgf: str
    vocabulary: tuple[str, ...]  # every word the grammar uses, checked against the dictionary

    @classmethod
    def digits(cls) -> Grammar:
        """Any number of spoken digits, "oh" for zero; the Result text is the words ("one two")."""
        return cls._make("digits", DIGIT_WORDS, repeat=True)

    @classmethod
    def yes_no(cls) -> Grammar:
        return cls._make("yesno", ("yes", "no"), repeat=False)

    @classmethod
    def words(cls, words: list[str]) -> Grammar:
        """One of `words` per utterance (a word may be a phrase: "sales department")."""
        phrases: list[str] = []
        for raw in words:
            parts = raw.lower().split()
            if not parts or not all(_WORD.fullmatch(part) for part in parts):
                raise AsrError(f"grammar word {raw!r} is not plain English words (letters and apostrophes)")
            phrases.append(" ".join(parts))
        if not phrases:
            raise AsrError("a words grammar needs at least one word")
        if len(phrases) > MAX_GRAMMAR_WORDS:
            raise AsrError(f"a words grammar holds at most {MAX_GRAMMAR_WORDS} words, not {len(phrases)}")
        return cls._make("words", tuple(dict.fromkeys(phrases)), repeat=False)

    @classmethod
    def _make(cls, name: str, phrases: tuple[str, ...], *, repeat: bool) -> Grammar:
        body = " | ".join(phrases)
        rule = f"( {body} )+" if repeat else f"( {body} )"
        jsgf = f"#JSGF V1.0;\ngrammar {name};\npublic <utterance> = {rule};\n"
        vocabulary = tuple(dict.fromkeys(word for phrase in phrases for word in phrase.split()))
        return cls(name=name, jsgf=jsgf, vocabulary=vocabulary)


_native_model_dir: Path | None = None


def _native_model() -> Path:
    """A copy of the en-us model whose feat.params lets it run at 8 kHz (files linked, not copied).

    pocketsphinx lets feat.params override the caller's -upperf, so the only way to lower it is a
    model directory with its own feat.params. Made once per process in a temporary directory.
    """
    global _native_model_dir
    if _native_model_dir is None:
        source = Path(get_model_path("en-us")) / "en-us"
        target = Path(tempfile.mkdtemp(prefix="voxgate-asr-8k-"))
        for path in source.iterdir():
            if path.name != "feat.params":
                (target / path.name).symlink_to(path)
        params = (source / "feat.params").read_text().splitlines()
        lines = [f"-upperf {NATIVE_UPPER_HZ}" if line.startswith("-upperf") else line for line in params]
        (target / "feat.params").write_text("\n".join(lines) + "\n")
        _native_model_dir = target
    return _native_model_dir


def _new_decoder(mode: SampleMode) -> Decoder:
    if mode == "16k":
        return Decoder(loglevel="ERROR")
    return Decoder(loglevel="ERROR", hmm=str(_native_model()), samprate=RATE, nfft=NATIVE_NFFT)


@dataclass(frozen=True)
class _Open:
    """A new stream's settings, sent to the worker ahead of its first frame."""

    grammar: Grammar | None
    single_utterance: bool
    interim: bool


_Control = bytes | _Open | None  # a frame, a stream's settings, or None: the stream closed
_Item = tuple[int, _Control]  # (stream id, what)
_Out = tuple[int, str, dict[str, object], float]  # (stream id, event name or "" for CPU only, payload, cpu_s)


class AsrThread:
    """The ASR worker process that recognizes speech for every Recognizer; `start()`/`stop()` are explicit.

    pocketsphinx holds the GIL through every decoding step, so decoding on a thread of this process
    stalled the event loop's 20 ms media tick; the decoders now live in a separate OS process (the
    name stays for the callers). This object owns that process and two threads of this one: a sender
    that writes the queued frames to it in batches (`send_bytes` releases the GIL while it waits) and
    a receiver that reads the events back. Started inside a running event loop, it delivers the
    recognizers' events on that loop; otherwise on the receiver thread (tests, tools). "spawn"
    re-imports the parent's main module in the worker: a script that starts one needs the usual
    `if __name__ == "__main__":` guard.
    """

    def __init__(self, *, limit: int = QUEUE_LIMIT_FRAMES, mode: SampleMode = SAMPLE_MODE) -> None:
        self.limit = limit
        self.mode: SampleMode = mode
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[_Item] = deque()
        self._frames = 0
        self._started = False
        self._stopping = False
        self._dead = False  # the worker process went away without stop()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: BaseProcess | None = None
        self._to_worker: Connection | None = None
        self._from_worker: Connection | None = None
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._streams: dict[int, Recognizer] = {}  # live recognizers by stream id, under _cond
        self._ids = itertools.count(1)

    @property
    def running(self) -> bool:
        return self._started and not self._stopping and not self._dead

    def start(self) -> None:
        if self._started:
            raise AsrError("the ASR thread was already started")
        self._started = True
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        # "spawn", not fork: the parent has threads (the loop's executors, the recorder), and a forked
        # child could inherit a lock held by one of them.
        context = multiprocessing.get_context("spawn")
        worker_in, self._to_worker = context.Pipe(duplex=False)
        self._from_worker, worker_out = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker_main, args=(worker_in, worker_out, self.mode), name="voxgate-asr", daemon=True
        )
        process.start()
        self._process = process  # only once started: stop() joins it
        # Only the child may hold its ends: the receiver sees EOF when the child dies only if ours are closed.
        worker_in.close()
        worker_out.close()
        self._sender = threading.Thread(target=self._send_loop, name="asr-send", daemon=True)
        self._receiver = threading.Thread(target=self._receive_loop, name="asr-receive", daemon=True)
        self._sender.start()
        self._receiver.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Drop queued audio, end the worker process and both threads; safe twice.

        The worker decodes the few batches already in the pipe (at most its 64 KB) and exits; if it
        does not within `timeout` it is terminated, then killed.
        """
        with self._cond:
            already = self._stopping
            self._stopping = True
            self._items.clear()
            self._frames = 0
            self._streams.clear()
            self._cond.notify()
        if already or not self._started:
            return
        deadline = time.monotonic() + timeout
        if self._sender is not None:
            self._sender.join(timeout)  # it sends the worker its stop message on the way out
        process = self._process
        if process is not None:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("the ASR worker process did not finish within %.1f s: terminated", timeout)
                process.terminate()
                process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join(1.0)
        if self._to_worker is not None:
            self._to_worker.close()
        if self._receiver is not None:
            self._receiver.join(max(1.0, deadline - time.monotonic()))  # EOF once the process is gone
            if self._receiver.is_alive():
                log.error("the ASR receiver thread did not finish")
        if self._from_worker is not None and (self._receiver is None or not self._receiver.is_alive()):
            self._from_worker.close()
        if process is not None and not process.is_alive():
            process.close()

    def open(self, recognizer: Recognizer, settings: _Open) -> int:
        """Register a stream; its settings go to the worker ahead of any frame. The stream id."""
        with self._cond:
            stream = next(self._ids)
            self._streams[stream] = recognizer
            self._append((stream, settings))
        return stream

    def submit(self, stream: int, pcm: bytes | None) -> bool:
        """Queue one frame (or a close); False when the queue is full or the worker stopping or gone."""
        with self._cond:
            if self._stopping or self._dead:
                return False
            if pcm is None:
                self._streams.pop(stream, None)
            else:
                if self._frames >= self.limit:
                    return False
                self._frames += 1
            self._append((stream, pcm))
        return True

    def _append(self, item: _Item) -> None:
        self._items.append(item)
        if len(self._items) == 1:  # the sender may be asleep only when the queue was empty
            self._cond.notify()

    def deliver(self, sink: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(sink)
                return
            except RuntimeError:  # the loop is closed: nobody is left to hear it on the loop
                return
        sink()

    def _send_loop(self) -> None:
        connection = self._to_worker
        assert connection is not None
        while True:
            with self._cond:
                while not self._items and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    break
                # A bounded batch: one pipe write per tick's worth of frames, yet the pipe's own
                # buffer stays small, so the queue (where frames are counted and dropped) holds the backlog.
                batch = [self._items.popleft() for _ in range(min(len(self._items), SEND_BATCH_ITEMS))]
                self._frames -= sum(1 for _, what in batch if isinstance(what, bytes))
            try:
                connection.send_bytes(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
            except OSError:  # the worker is gone: the receiver reports it
                return
        with contextlib.suppress(OSError):  # a worker already gone needs no stop message
            connection.send_bytes(pickle.dumps(None))  # stop: the worker exits after its current batch

    def _receive_loop(self) -> None:
        connection = self._from_worker
        assert connection is not None
        while True:
            try:
                stream, name, payload, cpu_s = cast(_Out, pickle.loads(connection.recv_bytes()))
            except (EOFError, OSError):
                break
            with self._cond:
                recognizer = self._streams.get(stream)
            if recognizer is not None:
                recognizer.p_event(name, payload, cpu_s)
        with self._cond:
            if self._stopping:
                return
            self._dead = True
            orphans = list(self._streams.values())
            self._streams.clear()
            self._items.clear()
            self._frames = 0
            self._cond.notify()
        process = self._process
        code = None
        if process is not None:
            process.join(1.0)
            code = process.exitcode
        log.error("the ASR worker process exited with code %s", code)
        error = f"speech recognition stopped: the ASR worker process exited with code {code}"
        for recognizer in orphans:
            recognizer.p_event("ASRError", {"error": error}, None)


class Recognizer:
    """One ASR stream: `feed()` frames from the media tick; events arrive on `on_event(name, payload)`.

    Events: "CaptureStarted" {}, "SpeechCaptured" {}, "Result" {text, confidence 0..100},
    "InterimResult" {text} (with `interim`), "ASRError" {error}. `feed()` and `close()` run on the
    caller's thread and never block; the decoding happens in the AsrThread's worker process.
    """

    def __init__(
        self,
        thread: AsrThread,
        *,
        on_event: EventSink,
        language: str = "en",
        grammar: Grammar | None = None,
        single_utterance: bool = False,
        interim: bool = False,
    ) -> None:
        if language not in LANGUAGES:
            raise AsrError(unsupported_message(language))
        if not thread.running:
            raise AsrError("the ASR thread is not running")
        self.thread = thread
        self.language = language
        self.grammar = grammar
        self.single_utterance = single_utterance
        self.interim = interim
        self.on_event = on_event
        self.accepted = 0  # frames queued
        self.dropped = 0  # frames lost because the ASR worker was behind by QUEUE_LIMIT_FRAMES
        self.cpu_s = 0.0  # ASR-worker CPU time spent on this stream, for the bench and health figures
        self.closed = False
        self.finished = False  # single utterance done, or failed: set when the worker says so
        self._stream = thread.open(self, _Open(grammar, single_utterance, interim))

    def feed(self, frame: Frame) -> None:
        """Queue one tick of audio (the frame is copied)."""
        if self.closed or self.finished:
            return
        if self.thread.submit(self._stream, frame.tobytes()):
            self.accepted += 1
        else:
            self.dropped += 1

    def close(self) -> None:
        """Stop recognizing: queued audio is discarded and no event follows. Safe twice."""
        if self.closed:
            return
        self.closed = True
        self.thread.submit(self._stream, None)

    def p_event(self, name: str, payload: dict[str, object], cpu_s: float | None) -> None:
        """On the receiver thread: one message from the worker; "" only updates `cpu_s`."""
        if cpu_s is not None:
            self.cpu_s = cpu_s
        if not name:
            return
        if name == "ASRError" or (name == "Result" and self.single_utterance):
            self.finished = True  # at once, so feed() stops queueing audio nobody will decode

        def sink() -> None:
            if not self.closed:  # close() promised silence, even for events already on their way
                self.on_event(name, payload)

        self.thread.deliver(sink)


# ---- the worker process ----


def _worker_main(inbox: Connection, outbox: Connection, mode: SampleMode) -> None:
    """The ASR process: decode batches of frames until told to stop or the parent goes away."""
    # Ctrl-C reaches the whole process group; the parent decides when recognition ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = _Worker(mode, outbox)
    while True:
        try:
            batch = cast(list[_Item] | None, pickle.loads(inbox.recv_bytes()))
        except (EOFError, OSError):  # the parent died
            break
        if batch is None:
            break
        try:
            worker.handle(batch)
        except (BrokenPipeError, EOFError):  # the parent died
            break


class _Worker:
    """Every stream's decoding state, keyed by stream id; lives in the worker process only."""

    def __init__(self, mode: SampleMode, outbox: Connection) -> None:
        self.mode: SampleMode = mode
        self.outbox = outbox
        self.streams: dict[int, _Stream] = {}
        self.pool: list[Decoder] = []

    def handle(self, batch: list[_Item]) -> None:
        touched: set[int] = set()
        for stream_id, what in batch:
            if isinstance(what, _Open):
                self.streams[stream_id] = _Stream(self, stream_id, what)
                continue
            stream = self.streams.get(stream_id)
            if stream is None:
                continue
            if what is None:
                self.release(stream)
                del self.streams[stream_id]
                touched.discard(stream_id)
                continue
            started = time.thread_time()
            try:
                stream.feed(what)
            except AsrError as exc:  # a request the model cannot serve: that stream alone ends
                stream.fail(str(exc))
                self.release(stream)
            except Exception as exc:
                log.exception("ASR failed")
                stream.fail(f"internal error: {exc!r}")
                self.release(stream)
            stream.cpu_s += time.thread_time() - started
            touched.add(stream_id)
        for stream_id in touched:  # the parent's cpu_s moves even when no event does
            self.send(stream_id, "", {}, self.streams[stream_id].cpu_s)

    def send(self, stream_id: int, name: str, payload: dict[str, object], cpu_s: float) -> None:
        message: _Out = (stream_id, name, payload, cpu_s)
        self.outbox.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def decoder(self) -> Decoder:
        return self.pool.pop() if self.pool else _new_decoder(self.mode)

    def release(self, stream: _Stream) -> None:
        decoder = stream.close()
        if decoder is not None and len(self.pool) < DECODER_POOL_LIMIT:
            self.pool.append(decoder)


class _Stream:
    """One recognizer's decoder, endpointer and resampler, in the worker process."""

    def __init__(self, worker: _Worker, stream_id: int, settings: _Open) -> None:
        self.worker = worker
        self.id = stream_id
        self.grammar = settings.grammar
        self.single_utterance = settings.single_utterance
        self.interim = settings.interim
        self.cpu_s = 0.0
        self.finished = False
        self._decoder: Decoder | None = None
        self._endpointer: Endpointer | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._in_utterance = False
        self._utterance_s = 0.0
        self._since_interim_s = 0.0
        self._last_interim = ""

    def _emit(self, name: str, payload: dict[str, object]) -> None:
        self.worker.send(self.id, name, payload, self.cpu_s)

    def feed(self, pcm: bytes) -> None:
        if self.finished:
            return
        if self._endpointer is None:
            self._open()
        assert self._endpointer is not None
        was_in_speech = self._endpointer.in_speech
        speech = self._endpointer.process(pcm)
        if speech is None:
            return
        if not was_in_speech:
            self._begin()
        self._decode(speech)
        if not self._endpointer.in_speech:
            self._emit("SpeechCaptured", {})
            self._finish()
        elif self._utterance_s >= MAX_UTTERANCE_S:
            self._finish()
            if not self.finished:
                self._begin(announce=False)
        elif self.interim and self._since_interim_s >= INTERIM_INTERVAL_S:
            self._interim()

    def _open(self) -> None:
        decoder = self.worker.decoder()
        self._decoder = decoder  # owned from here on, so a failure below still returns it to the pool
        if self.grammar is None:
            decoder.activate_search("_default")
        else:
            unknown = [word for word in self.grammar.vocabulary if decoder.lookup_word(word) is None]
            if unknown:
                raise AsrError(f"grammar words not in the English dictionary: {', '.join(unknown)}")
            search = f"grammar-{self.grammar.name}-{abs(hash(self.grammar.jsgf)):x}"
            decoder.add_jsgf_string(search, self.grammar.jsgf)
            decoder.activate_search(search)
        self._endpointer = Endpointer(
            window=VAD_WINDOW_S, ratio=VAD_RATIO, vad_mode=VAD_MODE, sample_rate=RATE, frame_length=FRAME / RATE
        )
        if self.worker.mode == "16k":
            self._resampler = soxr.ResampleStream(RATE, MODEL_RATE, 1, dtype="float32")

    def _begin(self, *, announce: bool = True) -> None:
        assert self._decoder is not None
        if announce:
            self._emit("CaptureStarted", {})
        if self.worker.mode == "16k":
            self._decoder.set_cmn(PHONE_CMN_INIT)  # every utterance alike, whatever the last caller said
        self._decoder.start_utt()
        self._in_utterance = True
        self._utterance_s = self._since_interim_s = 0.0
        self._last_interim = ""

    def _decode(self, speech: bytes, *, last: bool = False) -> None:
        assert self._decoder is not None
        seconds = len(speech) / (2 * RATE)
        self._utterance_s += seconds
        self._since_interim_s += seconds
        if self._resampler is not None:
            # One resampler stream per utterance: its filter state carries across the 20 ms frames,
            # and `last` flushes its delay line so the end of the last word reaches the decoder.
            samples = np.frombuffer(speech, dtype=np.int16).astype(np.float32) / 32768.0
            out = self._resampler.resample_chunk(samples, last=last)
            speech = np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16).tobytes()
        if speech:
            self._decoder.process_raw(speech)

    def _interim(self) -> None:
        assert self._decoder is not None
        self._since_interim_s = 0.0
        hyp = self._decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        if text and text != self._last_interim:
            self._last_interim = text
            self._emit("InterimResult", {"text": text})

    def _finish(self) -> None:
        assert self._decoder is not None
        if self._resampler is not None:
            self._decode(b"", last=True)
            self._resampler.clear()
        self._decoder.end_utt()
        self._in_utterance = False
        hyp = self._decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if self.single_utterance:
            self.finished = True
        self._emit("Result", {"text": text, "confidence": self._confidence() if text else 0})

    def _confidence(self) -> int:
        """The mean posterior of the words, 0..100; the utterance posterior shrinks with length."""
        assert self._decoder is not None
        posteriors = [seg.prob for seg in self._decoder.seg() if not _FILLER.match(seg.word)]
        if not posteriors:
            return 0
        return round(100 * min(1.0, max(0.0, sum(posteriors) / len(posteriors))))

    def fail(self, message: str) -> None:
        self.finished = True
        self._emit("ASRError", {"error": message})

    def close(self) -> Decoder | None:
        """Forget this stream's state; returns its decoder for reuse."""
        decoder, self._decoder = self._decoder, None
        if decoder is not None and self._in_utterance:
            decoder.end_utt()
        self._in_utterance = False
        self._endpointer = self._resampler = None
        return decoder
