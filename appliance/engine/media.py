"""A session's media routing: `sendMediaTo`/`stopMediaTo` from JS, and the conferences it made.

Scripts route units by their JS ids (calls, conferences) before those have any media: easyProcess
bridges an outgoing call the moment it dials. So the session keeps the routing the script asked
for, in JS ids, and `sync()` puts into the media plane's graph every edge whose two ends exist
there by now (a leg gets its endpoint with its first SDP); it runs after each command and leg event.
The routing rule itself (one source per unit, a new one replaces it; conferences mix) is the same
here as in the graph, reference section 4.4.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from appliance.media.graph import Conference
from appliance.media.plane import MediaPlane

log = logging.getLogger(__name__)

Command = dict[str, Any]


class UnitService(Protocol):
    """A session's media units of one kind (players, recorders, ASR, WebSockets), driven by JS commands."""

    def apply(self, cmd: Command) -> None: ...

    def unit_of(self, js_id: str) -> str | None:
        """The graph unit of a JS object of this kind, if it is alive."""


class SessionMedia:
    def __init__(self, session_id: int, plane: MediaPlane | None, unit_of: Callable[[str], str | None]) -> None:
        self._session_id = session_id
        self._plane = plane
        self._unit_of = unit_of  # a JS call or player id -> its unit id, once it has one
        self._conferences: dict[str, Conference] = {}  # by JS id
        self._wanted: dict[str, str] = {}  # JS sink -> JS source (sinks that are not conferences)
        self._mixed: set[tuple[str, str]] = set()  # (JS source, JS conference)
        self._applied: set[tuple[str, str]] = set()  # (source unit, sink unit) now in the graph

    def apply(self, cmd: Command) -> None:
        op, action = cmd.get("op"), cmd.get("action")
        if op == "conference":
            conference_id = str(cmd["id"])
            if action == "create" and self._plane is not None and conference_id not in self._conferences:
                self._conferences[conference_id] = self._plane.conference()
            elif action == "stop":
                self._drop_conference(conference_id)
        elif op == "media":
            source, sink = str(cmd["from"]), str(cmd["to"])
            if action == "send":
                if sink in self._conferences:
                    self._mixed.add((source, sink))
                else:
                    self._wanted[sink] = source
            elif action == "stop":
                self._mixed.discard((source, sink))
                if self._wanted.get(sink) == source:
                    del self._wanted[sink]
        self.sync()

    def _resolve(self, js_id: str) -> str | None:
        conference = self._conferences.get(js_id)
        if conference is not None:
            return conference.id
        return self._unit_of(js_id)

    def sync(self) -> None:
        """Make the graph carry every wanted edge whose ends exist, and no edge the script undid."""
        if self._plane is None:
            return
        edges = set()
        for source, sink in [*((s, k) for k, s in self._wanted.items()), *self._mixed]:
            a, b = self._resolve(source), self._resolve(sink)
            if a is not None and b is not None:
                edges.add((a, b))
        if edges == self._applied:
            return
        graph = self._plane.graph
        for a, b in self._applied - edges:
            graph.stop(a, b)
        for a, b in edges - self._applied:
            if a in graph and b in graph:
                graph.send(a, b)
        self._applied = {(a, b) for a, b in edges if a in graph and b in graph}

    def _drop_conference(self, conference_id: str) -> None:
        conference = self._conferences.pop(conference_id, None)
        if conference is None or self._plane is None:
            return
        self._plane.release(conference)
        self._mixed = {(s, c) for s, c in self._mixed if c != conference_id}
        self._wanted = {k: s for k, s in self._wanted.items() if s != conference_id}

    def close(self) -> None:
        """The session ended: its conferences go (legs release their own endpoints)."""
        for conference_id in list(self._conferences):
            self._drop_conference(conference_id)
        self._wanted.clear()
        self._mixed.clear()
        self._applied.clear()
