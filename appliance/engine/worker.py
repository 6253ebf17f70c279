"""Engine worker threads: each runs the JS of the sessions pinned to it, one job at a time.

QuickJS releases the GIL while JS runs, so a busy script does not stall the event loop; a session
stays on one worker for life because a QuickJS runtime must not change threads.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

THREAD_STACK_BYTES = 8 * 1024 * 1024  # QuickJS's own stack limit is 1 MB; leave room below it


class EngineWorker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.sessions = 0  # pinned sessions, for placing new ones on the least loaded worker
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        previous = threading.stack_size()
        try:
            threading.stack_size(THREAD_STACK_BYTES)
            self._thread = threading.Thread(target=self._run, name=f"engine-{index}", daemon=True)
            self._thread.start()
        finally:
            threading.stack_size(previous)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                log.exception("engine worker %d: a job failed", self.index)

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread; safe twice."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
