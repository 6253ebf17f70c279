"""One session's QuickJS context: its limits, its host function, bytecode, and the turn protocol.

A *turn* is one piece of JS work started by Python (the prelude, a scenario's top-level code, or one
event), followed by the promise jobs it queued, then the drain of the outbox. The whole turn runs
within one CPU budget (limits.CALLBACK_CPU_SECONDS of this thread's CPU time). A turn ends with the
commands the script queued and, if it failed, a `ScriptFailure`.

A context is used by one engine worker thread for its whole life (QuickJS keeps the stack top of
the thread it runs on).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import _quickjs

from appliance.engine import _qjsglue, limits, prelude
from appliance.engine.errors import ScriptSyntaxError
from appliance.engine.host import make_host

_qjsglue.bind(_quickjs.__file__)

# In VoxEngine `new Date()` is always UTC+0, and QuickJS takes local time from the process.
os.environ["TZ"] = "UTC"
time.tzset()

Command = dict[str, Any]
FailureKind = Literal["error", "timeout", "memory"]
_FRAME = re.compile(r"\(?([^\s()]+):(\d+):(\d+)\)?\s*$")
_SYNTAX_AT = re.compile(r"^\s*at ([^\s()]+):(\d+):(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class ScriptFailure:
    """Why a turn failed: a JS error, the CPU budget, or the heap limit."""

    kind: FailureKind
    message: str
    location: str  # "file:line:column" of the script frame nearest the throw, or ""
    stack: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


def _script_location(stack: str) -> str:
    for line in stack.splitlines():
        match = _FRAME.search(line.strip())
        if match and not match.group(1).startswith(prelude.PREFIX):
            return f"{match.group(1)}:{match.group(2)}:{match.group(3)}"
    return ""


def _failure(text: str, interrupted: bool) -> ScriptFailure:
    message, _, stack = text.partition("\n")
    location = _script_location(stack)
    if interrupted:
        return ScriptFailure(
            "timeout",
            f"a callback ran for more than {limits.CALLBACK_CPU_SECONDS:g} s of CPU time and was stopped",
            location,
            stack,
        )
    if "out of memory" in message:
        return ScriptFailure(
            "memory", f"the session's JS heap reached its limit of {limits.HEAP_BYTES >> 20} MB", location, stack
        )
    return ScriptFailure("error", message, location, stack)


class JsContext:
    """A QuickJS context with the prelude loaded, driven turn by turn from one thread."""

    def __init__(self) -> None:
        self._ctx: Any = _quickjs.Context()
        self._ctx.set_memory_limit(limits.HEAP_BYTES)
        self._guard = _qjsglue.Guard(self._ctx)
        this = weakref.ref(self)  # no cycle through the context's host function
        self._ctx.add_callable("__voxHost", make_host(lambda: c.heap_left() if (c := this()) else 0))
        self._dispatch: Any = None
        self._drain: Any = None
        self.dead = False  # after a heap-limit failure: nothing may run here again

    def compile(self, filename: str, source: str) -> bytes:
        """Bytecode of a script; ScriptSyntaxError names the file and line."""
        result = self._guard.compile(source, filename)
        if isinstance(result, str):
            message, _, where = result.partition("\n")
            match = _SYNTAX_AT.search(where)
            if match:
                raise ScriptSyntaxError(filename, int(match.group(2)), int(match.group(3)), message)
            raise ScriptSyntaxError(filename, self._first_failing_line(filename, source, result), 0, message)
        return result

    def _first_failing_line(self, filename: str, source: str, error: str) -> int:
        """The line of an error QuickJS gives no position for (a bad regular expression literal): the
        shortest run of leading lines that fails the same way ends there (the parser meets it first)."""
        lines = source.splitlines(keepends=True)
        low, high = 1, len(lines)
        while low < high:
            middle = (low + high) // 2
            if self._guard.compile("".join(lines[:middle]), filename) == error:
                high = middle
            else:
                low = middle + 1
        return low if lines else 0

    def load_prelude(self) -> ScriptFailure | None:
        for code in _prelude_bytecode(self):
            failure, _ = self.run(code)
            if failure is not None:
                return failure
        self._dispatch = self._ctx.get("__voxDispatch")
        self._drain = self._ctx.get("__voxDrain")
        return None

    def run(self, bytecode: bytes) -> tuple[ScriptFailure | None, list[Command]]:
        """A turn that runs a compiled script (the prelude or a scenario's top-level code)."""
        return self._turn(lambda: self._guard.run(bytecode))

    def dispatch(self, event: Command) -> tuple[ScriptFailure | None, list[Command]]:
        """A turn that delivers one event to the session's JS."""
        text = json.dumps(event)
        return self._turn(lambda: self._dispatch(text))

    def _turn(self, action: Callable[[], str | None]) -> tuple[ScriptFailure | None, list[Command]]:
        if self.dead:
            raise RuntimeError("this context hit its heap limit and must not run again")
        error: str | None = None
        commands: list[Command] = []
        self._guard.arm(limits.CALLBACK_CPU_SECONDS)
        try:
            try:
                error = action()
                while error is None and self._ctx.execute_pending_job():
                    pass
            except _quickjs.JSException as exc:
                error = str(exc)
            if error is None:
                rejected = self._guard.take_unhandled()
                if rejected is not None:
                    error = f"Uncaught (in promise) {rejected}"
            interrupted = self._guard.disarm()
            failure = None if error is None else _failure(error, interrupted)
            if failure is not None and failure.kind == "memory":
                self.dead = True
            elif self._drain is not None:
                # The commands queued before a failure still count (log lines above all).
                self._guard.arm(limits.CALLBACK_CPU_SECONDS)
                commands = json.loads(self._drain())
        except _quickjs.JSException as exc:  # the drain itself failed: heap or budget exhausted
            failure = _failure(str(exc), self._guard.disarm())
            self.dead = failure.kind == "memory"
        finally:
            self._guard.disarm()
        return failure, commands

    def heap_used(self) -> int:
        return int(self._ctx.memory()["malloc_size"])

    def heap_left(self) -> int:
        return max(0, limits.HEAP_BYTES - self.heap_used())

    def close(self) -> None:
        """Free the context; safe twice."""
        if self._ctx is None:
            return
        self._dispatch = None
        self._drain = None
        self._guard.close()
        self._ctx = None


class BytecodeCache:
    """Compiled scripts by file name and source hash, shared by all workers (bounded, LRU)."""

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, ctx: JsContext, filename: str, source: str) -> bytes:
        key = (filename, hashlib.sha256(source.encode("utf-8")).hexdigest())
        with self._lock:
            code = self._entries.get(key)
            if code is not None:
                self._entries.move_to_end(key)
                return code
        code = ctx.compile(filename, source)
        with self._lock:
            self._entries[key] = code
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return code


_prelude_lock = threading.Lock()
_prelude_code: list[bytes] | None = None


def _prelude_bytecode(ctx: JsContext) -> list[bytes]:
    global _prelude_code
    with _prelude_lock:
        if _prelude_code is None:
            _prelude_code = [ctx.compile(name, text) for name, text in prelude.sources()]
        return _prelude_code
