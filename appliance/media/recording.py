"""Recordings on disk: the file side of `call.record()` and `VoxEngine.createRecorder()`.

The media tick runs on the event loop every 20 ms, so a recorder's `write()` only copies the frame
into a queue; one `RecordingThread` shared by all recorders does every system call. The queue is
bounded (`QUEUE_LIMIT_FRAMES`): when the disk falls further behind, frames are dropped and counted,
and the tick never waits.

A recording survives a crash (kill -9, power loss) up to its last flush, made every
`FLUSH_INTERVAL_S`: the audio written so far goes to the file, a WAV header is rewritten with the
current sizes, and the file is synced. So a WAV cut anywhere after a flush is a valid WAV of
everything up to it, and `repair_wav()` recovers the rest from the file length at start-up. MP3
frames are self-contained, so an MP3 needs no header and a decoder skips a cut last frame.

A write error (a full disk above all) stops that one recording: what is already in the file is
left valid, `on_error(message)` is called once, and later writes are ignored.

Retention (`expire`) and the creation time live in a JSON sidecar next to each file, so a
recording's name stays a plain URL path; see `RecordingStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import lameenc
import numpy as np

from appliance.media.audio import FRAME, RATE, SAMPLE, Frame
from appliance.media.graph import MediaError

log = logging.getLogger(__name__)

RecordingFormat = Literal["wav", "mp3"]
FORMATS: tuple[RecordingFormat, ...] = ("wav", "mp3")

FLUSH_INTERVAL_S = 1.0  # the most audio a crash may cost; each flush is one write and one sync per file
# Frames waiting for the writer thread, all recorders together: 100 s of one recorder, or 0.5 s of
# 200. A longer disk stall drops audio rather than growing memory without bound on a small board.
QUEUE_LIMIT_FRAMES = 5000
WRITE_CHUNK_BYTES = 4096  # PCM gathered before a write(): 0.25 s of mono, one system call instead of 13
STOP_TIMEOUT_S = 10.0  # how long stop() waits for the thread to finish the queue and close files
MP3_KBPS = {1: 32, 2: 64}  # Voximplant's default is "8 kHz / 32 kbps mp3"; stereo keeps 32 per channel
MP3_QUALITY = 5  # LAME's 0 (best, slowest) .. 9: 5 is transparent enough for 8 kHz speech and cheap on a Pi
WAV_HEADER_BYTES = 44  # the canonical header we write: RIFF, fmt (PCM, 16 bytes), data
WAV_MAX_DATA_BYTES = 0xFFFFFFFF - 36  # RIFF sizes are 32-bit: ~74 h of 8 kHz mono
WAV_HEADER_SCAN_BYTES = 4096  # how far repair_wav() looks for the data chunk of a foreign WAV
SIDECAR_SUFFIX = ".json"

# RecordExpireTime (voxengine-symbols.json): the values scripts pass, and retention in days.
# THREEMONTHS is '' and also the default when `expire` is not given.
EXPIRE_VALUES = {
    "THREEMONTHS": "",
    "SIXMONTHS": "-6m",
    "ONEYEAR": "-1y",
    "TWOYEARS": "-2y",
    "THREEYEARS": "-3y",
    "FIVEYEARS": "-5y",
}
RETENTION_DAYS = {"": 91, "-6m": 183, "-1y": 366, "-2y": 731, "-3y": 1096, "-5y": 1827}  # rounded up
DAY_S = 86400.0


class RecordingError(MediaError, ValueError):
    """A recording request that cannot be honoured, or a recording file that cannot be read."""


def retention_s(expire: str | None) -> float:
    """Seconds to keep a recording, from a RecordExpireTime value ('-6m') or name ('SIXMONTHS')."""
    value = "" if expire is None else EXPIRE_VALUES.get(expire, expire)
    if value not in RETENTION_DAYS:
        names = ", ".join(EXPIRE_VALUES)
        raise RecordingError(f"unknown record expire {expire!r}: use a RecordExpireTime ({names})")
    return RETENTION_DAYS[value] * DAY_S


def wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding `data_bytes` of samples."""
    block = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate, rate * block, block, 16, b"data", data_bytes,
    )  # fmt: skip


class Disk:
    """The system calls a recording makes, one method each, so tests can make a disk slow or full."""

    def open(self, path: Path) -> int:
        # O_EXCL: a name is never reused, so finding the file already there is a bug worth an error.
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def sync(self, fd: int) -> None:
        # fdatasync still persists the file size, which is all the metadata a reader needs.
        os.fdatasync(fd)

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def close(self, fd: int) -> None:
        os.close(fd)

    def sync_dir(self, directory: Path) -> None:
        # A new file survives power loss only once its directory entry is on disk too.
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_file(self, path: Path, data: bytes) -> None:
        """Replace `path` atomically: readers see the old content or the new, never a part."""
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[self.write(fd, view) :]
            self.sync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)


_OPEN, _DATA, _CLOSE = 0, 1, 2
_Item = tuple["RecordingWriter", int, "bytes | tuple[bytes, bytes] | None"]


class RecordingThread:
    """The one thread that writes every recording; `start()` and `stop()` are explicit.

    Started inside a running event loop, it calls writers' `on_error` on that loop; otherwise on
    itself. `stop()` finishes the queue and closes every file still open, so all are left valid.
    """

    def __init__(self, *, limit: int = QUEUE_LIMIT_FRAMES, disk: Disk | None = None) -> None:
        self.limit = limit
        self.disk = disk or Disk()
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[_Item] = deque()
        self._frames = 0  # frames in _items; control items are never refused, so never counted
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: set[RecordingWriter] = set()  # owned by the thread

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopping

    def start(self) -> None:
        if self._thread is not None:
            raise RecordingError("the recording thread was already started")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.Thread(target=self._run, name="recordings", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Finish queued work, close open files, end the thread. Blocks; safe twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the recording thread did not finish within %.1f s", timeout)

    async def astop(self) -> None:
        """stop() in an executor, so the loop keeps ticking while files are closed."""
        await asyncio.get_running_loop().run_in_executor(None, self.stop)

    def submit_frame(self, writer: RecordingWriter, payload: bytes | tuple[bytes, bytes]) -> bool:
        """Queue one frame; False when the queue is full or the thread stopping (the frame is lost)."""
        with self._cond:
            if self._stopping or self._frames >= self.limit:
                return False
            self._items.append((writer, _DATA, payload))
            self._frames += 1
            if len(self._items) == 1:  # the thread may be asleep only when the queue was empty
                self._cond.notify()
        return True

    def submit_control(self, writer: RecordingWriter, kind: int) -> None:
        with self._cond:
            self._items.append((writer, kind, None))
            self._cond.notify()

    def deliver(self, callback: Callable[[str], None], message: str) -> None:
        """Call `callback(message)` on the loop the thread was started in, if any."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(callback, message)
                return
            except RuntimeError:  # the loop is closed: nobody is left to hear it on the loop
                pass
        try:
            callback(message)
        except Exception:
            log.exception("a recording's error callback raised")

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._items and not self._stopping:
                    # Wake by timeout too: files must be flushed even while no frames arrive.
                    self._cond.wait(FLUSH_INTERVAL_S / 4)
                batch, self._items, self._frames = self._items, deque(), 0
                stopping = self._stopping
            for writer, kind, payload in batch:
                self._handle(writer, kind, payload)
            now = time.monotonic()  # real time on purpose: durability is about the real disk
            for writer in list(self._open):
                if writer.dirty and now - writer.last_flush >= FLUSH_INTERVAL_S:
                    self._guarded(writer, writer.t_flush, False)
            if stopping and not batch:
                break
        for writer in list(self._open):
            self._handle(writer, _CLOSE, None)

    def _handle(self, writer: RecordingWriter, kind: int, payload: bytes | tuple[bytes, bytes] | None) -> None:
        if writer.done.is_set():
            return  # failed, or closed already: later items for it are void
        if kind == _OPEN:
            if self._guarded(writer, writer.t_open):
                self._open.add(writer)
        elif kind == _DATA:
            assert payload is not None
            self._guarded(writer, writer.t_append, payload)
        else:
            self._guarded(writer, writer.t_flush, True)
            if not writer.done.is_set():
                writer.t_finish(None)
            self._open.discard(writer)

    def _guarded(self, writer: RecordingWriter, step: Callable[..., None], *args: object) -> bool:
        """Run one step of `writer`; any failure ends that recording alone, never the thread."""
        try:
            step(*args)
        except OSError as exc:
            reason = "disk full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
            writer.t_finish(f"{reason} (errno {exc.errno})")
        except Exception as exc:
            log.exception("recording %s failed", writer.path)
            writer.t_finish(f"internal error: {exc!r}")
        else:
            return True
        self._open.discard(writer)
        return False


class RecordingWriter:
    """One recording file: mono (`write(frame)`) or stereo (`write(left, right)`), WAV or MP3.

    `write()` and `close()` run on the caller's thread and never block; the `t_*` methods and the
    state they use belong to the writer thread.
    """

    def __init__(
        self,
        thread: RecordingThread,
        path: Path,
        fmt: RecordingFormat = "wav",
        channels: int = 1,
        *,
        on_error: Callable[[str], None] | None = None,
        sidecar: dict[str, object] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise RecordingError(f"unknown recording format {fmt!r}: use one of {', '.join(FORMATS)}")
        if channels not in (1, 2):
            raise RecordingError(f"a recording has 1 or 2 channels, not {channels}")
        if not thread.running:
            raise RecordingError("the recording thread is not running")
        self.thread = thread
        self.path = path
        self.format: RecordingFormat = fmt
        self.channels = channels
        self.rate = RATE
        self.on_error = on_error
        self.sidecar = sidecar
        self.accepted = 0  # frames queued
        self.dropped = 0  # frames lost because the writer thread was behind by QUEUE_LIMIT_FRAMES
        self.error: str | None = None  # set by the writer thread when the recording stopped on an error
        self.done = threading.Event()  # the file is final: closed, or stopped by an error
        self._closing = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()
        # Writer-thread state.
        self.last_flush = 0.0
        self.dirty = False  # audio arrived since the last flush: an idle recording costs no syncs
        self._fd: int | None = None
        self._pending = bytearray()  # PCM since the last flush, interleaved
        self._data_bytes = 0  # bytes in the file after the header
        self._written_samples = 0  # per channel, handed to the file
        self._pending_samples = 0
        self._encoder: lameenc.Encoder | None = None
        thread.submit_control(self, _OPEN)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def write(self, left: Frame, right: Frame | None = None) -> None:
        """Queue one tick of audio: `left` alone for mono, `left` and `right` for stereo."""
        if self._closing or self.done.is_set():
            return  # stopped on an error or closed: the caller need not track that
        if (right is None) != (self.channels == 1):
            raise RecordingError(f"a {self.channels}-channel recording takes {self.channels} frame(s) per write")
        for frame in (left,) if right is None else (left, right):
            if frame.shape != (FRAME,) or frame.dtype != SAMPLE:
                raise RecordingError(f"a frame is {FRAME} int16 samples, not {frame.shape} {frame.dtype}")
        # tobytes() copies: the mixer reuses its arrays on the next tick.
        payload = left.tobytes() if right is None else (left.tobytes(), right.tobytes())
        if self.thread.submit_frame(self, payload):
            self.accepted += 1
        else:
            self.dropped += 1

    def close(self) -> None:
        """Ask for the final flush and header; returns at once. Safe twice."""
        if not self._closing:
            self._closing = True
            self.thread.submit_control(self, _CLOSE)

    async def aclose(self) -> None:
        """Close and wait until the file is final."""
        self.close()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._waiters_lock:
            if self.done.is_set():
                return
            self._waiters.append((loop, future))
        await future

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # The writer thread's side.

    def t_open(self) -> None:
        disk = self.thread.disk
        if self.sidecar is not None:
            disk.write_file(self.path.with_name(self.path.name + SIDECAR_SUFFIX), json.dumps(self.sidecar).encode())
        self._fd = disk.open(self.path)
        if self.format == "wav":
            self._write_all(wav_header(self.channels, self.rate, 0))
            self._data_bytes = 0  # the header is not data
        else:
            self._encoder = lameenc.Encoder()
            self._encoder.set_in_sample_rate(self.rate)
            self._encoder.set_channels(self.channels)
            self._encoder.set_bit_rate(MP3_KBPS[self.channels])
            self._encoder.set_quality(MP3_QUALITY)
        disk.sync(self._fd)
        disk.sync_dir(self.path.parent)
        self.last_flush = time.monotonic()

    def t_append(self, payload: bytes | tuple[bytes, bytes]) -> None:
        if isinstance(payload, bytes):
            self._pending += payload
        else:
            both = np.empty(2 * FRAME, dtype=SAMPLE)
            both[0::2] = np.frombuffer(payload[0], dtype=SAMPLE)
            both[1::2] = np.frombuffer(payload[1], dtype=SAMPLE)
            self._pending += both.tobytes()
        self._pending_samples += FRAME
        self.dirty = True
        if len(self._pending) >= WRITE_CHUNK_BYTES:
            # Into the page cache now, so a killed process loses nothing that repair_wav() cannot
            # recover; only power loss waits for the next flush's sync.
            self._write_pending()

    def t_flush(self, final: bool) -> None:
        """Write what is pending, make the header match, sync."""
        assert self._fd is not None
        self._write_pending(final)
        if self._encoder is None:
            self.thread.disk.pwrite(self._fd, wav_header(self.channels, self.rate, self._data_bytes), 0)
        self.thread.disk.sync(self._fd)
        self.last_flush = time.monotonic()
        self.dirty = False

    def _write_pending(self, final: bool = False) -> None:
        data: bytes | bytearray = self._pending
        self._pending = bytearray()
        if self._encoder is not None:
            data = self._encoder.encode(bytes(data))  # it refuses a mutable buffer
            if final:
                data += self._encoder.flush()  # LAME holds back up to a frame plus its look-ahead
        elif self._data_bytes + len(data) > WAV_MAX_DATA_BYTES:
            raise OSError(errno.EFBIG, f"a WAV holds at most {WAV_MAX_DATA_BYTES} bytes of audio")
        self._write_all(data)
        self._written_samples += self._pending_samples
        self._pending_samples = 0

    def _write_all(self, data: bytes | bytearray) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            n = self.thread.disk.write(self._fd, view)
            if n <= 0:
                raise OSError(errno.EIO, "the disk accepted no bytes")
            self._data_bytes += n  # counted as it lands, so a failure knows what is in the file
            view = view[n:]

    def t_finish(self, error: str | None) -> None:
        """Close the file; on an error, first leave what is in it valid, then report once."""
        if self._fd is not None:
            disk = self.thread.disk
            try:
                if error is not None and self.format == "wav":
                    keep = self._data_bytes - self._data_bytes % (2 * self.channels)
                    disk.truncate(self._fd, WAV_HEADER_BYTES + keep)  # drop a partly written sample
                    disk.pwrite(self._fd, wav_header(self.channels, self.rate, keep), 0)
                    disk.sync(self._fd)
            except OSError as exc:
                log.warning("recording %s: could not finalise after an error: %s", self.path, exc)
            finally:
                disk.close(self._fd)
                self._fd = None
        if error is not None:
            if self.format == "wav":
                seconds = self._data_bytes / (2 * self.channels * self.rate)
            else:
                seconds = self._written_samples / self.rate
            self.error = f"recording {self.path.name} stopped after {seconds:.1f} s: {error}"
            log.warning("%s", self.error)
            if self.on_error is not None:
                self.thread.deliver(self.on_error, self.error)
        with self._waiters_lock:
            self.done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody awaits any more
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(frozen=True)
class WavLayout:
    channels: int
    rate: int
    block_align: int
    data_offset: int  # where the samples start
    data_size: int  # as the header says, which a crash may have left short


def read_wav_layout(f: BinaryIO, name: str) -> WavLayout:
    """Find the fmt and data chunks of a 16-bit PCM WAV; sizes in the header may be stale."""
    head = f.read(WAV_HEADER_SCAN_BYTES)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise RecordingError(f"{name}: not a WAV file (no RIFF/WAVE header)")
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        chunk, size = struct.unpack_from("<4sI", head, pos)
        if chunk == b"fmt ":
            if size < 16 or pos + 24 > len(head):
                raise RecordingError(f"{name}: fmt chunk of {size} bytes is too short")
            fmt = struct.unpack_from("<HHIIHH", head, pos + 8)
        elif chunk == b"data":
            if fmt is None:
                raise RecordingError(f"{name}: data chunk before the fmt chunk")
            tag, channels, rate, _, block_align, bits = fmt
            if tag != 1 or bits != 16 or block_align != 2 * channels:
                raise RecordingError(f"{name}: not 16-bit PCM (format {tag}, {bits} bits)")
            return WavLayout(channels, rate, block_align, pos + 8, size)
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    raise RecordingError(f"{name}: no data chunk in the first {WAV_HEADER_SCAN_BYTES} bytes")


def repair_wav(path: Path) -> bool:
    """Make the header sizes of a WAV left by a crash match its length; True if anything changed.

    Blocking: for start-up, or an executor.
    """
    with path.open("r+b") as f:
        layout = read_wav_layout(f, path.name)
        st = os.fstat(f.fileno())
        length = st.st_size
        available = max(0, length - layout.data_offset)
        data = available - available % layout.block_align
        f.seek(4)
        (riff_size,) = struct.unpack("<I", f.read(4))
        want_riff = layout.data_offset - 8 + data
        if data == layout.data_size and riff_size == want_riff and available == data:
            return False
        if data > WAV_MAX_DATA_BYTES:
            raise RecordingError(f"{path.name}: {data} bytes of audio do not fit a WAV header")
        if available != data:
            f.truncate(layout.data_offset + data)
        f.seek(4)
        f.write(struct.pack("<I", want_riff))
        f.seek(layout.data_offset - 4)
        f.write(struct.pack("<I", data))
        f.flush()
        os.fsync(f.fileno())
    # Keep the time of the last audio written: a recording without a sidecar is dated by it.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return True


@dataclass(frozen=True)
class RecordingInfo:
    path: Path
    format: RecordingFormat
    size: int  # bytes
    duration_s: float
    created: float  # Unix time
    expires: float  # Unix time


class RecordingStore:
    """The recordings directory: unique names, sidecars with retention, listing, expiry, repair.

    `open()` only queues work. `recordings()`, `expire()` and `repair_all()` touch the disk and block:
    call them at start-up or through an executor.
    """

    def __init__(self, directory: Path, thread: RecordingThread) -> None:
        self.directory = directory
        self.thread = thread

    def new_path(self, prefix: str, ext: str) -> Path:
        """`<prefix>-<uuid>.<ext>`, with the prefix (session, leg or recorder id) made path-safe."""
        if ext not in FORMATS:
            raise RecordingError(f"unknown recording format {ext!r}: use one of {', '.join(FORMATS)}")
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in prefix).lstrip(".")
        return self.directory / f"{safe or 'rec'}-{uuid.uuid4().hex}.{ext}"

    def open(
        self,
        prefix: str,
        fmt: RecordingFormat = "mp3",
        channels: int = 1,
        *,
        now: float,
        expire: str | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> RecordingWriter:
        """A new recording; `now` is the clock's Unix time, `expire` a RecordExpireTime."""
        keep = retention_s(expire)
        sidecar: dict[str, object] = {
            "created": now, "expires": now + keep, "format": fmt, "channels": channels, "rate": RATE,
        }  # fmt: skip
        return RecordingWriter(
            self.thread, self.new_path(prefix, fmt), fmt, channels, on_error=on_error, sidecar=sidecar
        )

    def recordings(self) -> list[RecordingInfo]:
        found = []
        for path in self.directory.iterdir():
            ext = path.suffix[1:]
            if ext in FORMATS and path.is_file():
                try:
                    found.append(self._info(path, "wav" if ext == "wav" else "mp3"))
                except (OSError, RecordingError) as exc:
                    log.warning("recording %s unreadable: %s", path, exc)
        return sorted(found, key=lambda info: (info.created, info.path.name))

    def expire(self, now: float) -> list[Path]:
        """Delete the recordings (and sidecars) whose retention ended by `now`; returns them."""
        gone = []
        for info in self.recordings():
            if info.expires <= now:
                info.path.unlink(missing_ok=True)
                info.path.with_name(info.path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
                gone.append(info.path)
        return gone

    def repair_all(self) -> list[Path]:
        """Fix the WAV headers left stale by a crash; run at start-up, before any recording opens."""
        repaired = []
        for path in sorted(self.directory.glob("*.wav")):
            try:
                if repair_wav(path):
                    repaired.append(path)
            except (OSError, RecordingError) as exc:
                log.warning("recording %s cannot be repaired: %s", path, exc)
        return repaired

    def _info(self, path: Path, fmt: RecordingFormat) -> RecordingInfo:
        st = path.stat()
        meta: dict[str, object] = {}
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if sidecar.exists():
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError) as exc:
                log.warning("recording sidecar %s unreadable: %s", sidecar, exc)
        created = _number(meta.get("created"), st.st_mtime)
        expires = _number(meta.get("expires"), created + retention_s(None))
        if fmt == "wav":
            with path.open("rb") as f:
                layout = read_wav_layout(f, path.name)
            data = min(layout.data_size, max(0, st.st_size - layout.data_offset))
            duration = data / (layout.rate * layout.block_align)
        else:
            channels = int(_number(meta.get("channels"), 1))
            # Constant bit rate, so the length gives the duration to within a frame (72 ms).
            duration = st.st_size * 8 / (MP3_KBPS.get(channels, MP3_KBPS[1]) * 1000)
        return RecordingInfo(path, fmt, st.st_size, duration, created, expires)


def _number(value: object, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default
