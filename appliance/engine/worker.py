"""Engine worker threads: each runs the JS of the sessions pinned to it, one job at a time.

QuickJS releases the GIL while JS runs, so a busy script does not stall the event loop; a session
stays on one worker for life because a QuickJS runtime must not change threads.

When it has nothing else to do, a worker prepares a few contexts with the prelude already loaded,
so a new session (an incoming call) starts without waiting for them. The prelude holds nothing of
any session: everything session-specific arrives with the session's "init" event.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from appliance.engine.jsruntime import JsContext

log = logging.getLogger(__name__)

THREAD_STACK_BYTES = 8 * 1024 * 1024  # QuickJS's own stack limit is 1 MB; leave room below it
SPARE_CONTEXTS = 2  # per worker: covers a burst of two calls; each costs about 0.3 MB


class EngineWorker:
    def __init__(self, index: int) -> None:
        self.index = index
        self.sessions = 0  # pinned sessions, for placing new ones on the least loaded worker
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._spare: list[JsContext] = []  # touched only on the worker thread
        previous = threading.stack_size()
        try:
            threading.stack_size(THREAD_STACK_BYTES)
            self._thread = threading.Thread(target=self._run, name=f"engine-{index}", daemon=True)
            self._thread.start()
        finally:
            threading.stack_size(previous)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def new_context(self) -> JsContext:
        """A context with the prelude loaded, for a session on this worker (call on the worker)."""
        return self._spare.pop() if self._spare else _prepared()

    def _run(self) -> None:
        while True:
            if len(self._spare) < SPARE_CONTEXTS and self._jobs.empty():
                try:
                    self._spare.append(_prepared())
                    continue
                except Exception:  # sessions will meet the same failure and report it
                    log.exception("engine worker %d: could not prepare a context", self.index)
            job = self._jobs.get()
            if job is None:
                break
            try:
                job()
            except Exception:
                log.exception("engine worker %d: a job failed", self.index)
        for ctx in self._spare:
            ctx.close()
        self._spare.clear()

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread; safe twice."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()


def _prepared() -> JsContext:
    ctx = JsContext()
    failure = ctx.load_prelude()
    if failure is not None:  # the prelude is ours: this is a bug, not a script's fault
        ctx.close()
        raise RuntimeError(f"the prelude failed to load: {failure}")
    return ctx
