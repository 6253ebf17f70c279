"""What sessions' calls and media units run on: the media plane, prompt sources, recordings, ASR.

One set per process, built the same way for the daemon and for the offline harness (`appliance
exec`), and given to the engine. `directory` holds the caches and the recordings.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from appliance.clock import Clock
from appliance.engine.engine import Engine
from appliance.engine.players import MediaSources
from appliance.engine.recorders import Recordings
from appliance.media.asr import AsrThread
from appliance.media.fetch import MediaFetcher
from appliance.media.plane import MediaPlane
from appliance.media.ports import RtpPorts
from appliance.media.recording import RecordingStore, RecordingThread
from appliance.media.tts import TtsCache

log = logging.getLogger(__name__)

TTS_CACHE_BYTES = 64 * 1024 * 1024  # rendered prompts kept on disk


class MediaServices:
    def __init__(self, clock: Clock, ports: RtpPorts, directory: Path) -> None:
        self.plane = MediaPlane(clock, ports)
        self.fetcher = MediaFetcher(directory / "cache" / "media")
        self.sources = MediaSources(self.fetcher, TtsCache(directory / "cache" / "tts", TTS_CACHE_BYTES))
        self.recording_thread = RecordingThread()
        self.records = RecordingStore(directory / "records", self.recording_thread)
        self.asr_thread = AsrThread()

    async def start(self, engine: Engine) -> None:
        """Start ticking and the worker threads; recordings a crash left open are repaired first."""
        self.records.directory.mkdir(parents=True, exist_ok=True)
        self.recording_thread.start()
        repaired = await asyncio.to_thread(self.records.repair_all)
        if repaired:
            log.info("repaired %d recordings left by an earlier stop", len(repaired))
        self.asr_thread.start()
        self.plane.start()
        engine.plane = self.plane
        engine.sources = self.sources
        engine.recordings = Recordings(self.records, engine.base_url)
        engine.asr_thread = self.asr_thread

    async def close(self) -> None:
        """Stop ticking and the threads; recordings are finished. Safe after a failed start."""
        self.plane.close()
        await self.fetcher.close()
        await self.recording_thread.astop()
        await asyncio.to_thread(self.asr_thread.stop)
