"""Who hears whom: the routing of audio between media units (VoxEngine's sendMediaTo model).

Reference section 4.4: `a.sendMediaTo(b)` makes `b` receive `a`'s output and leaves `b`'s output
alone. A unit sends to any number of units but receives one stream at a time: a new source replaces
the old one. A conference is the exception: it mixes everything sent to it, and each unit that both
sends to it and receives from it hears the mix without its own voice. The graph only keeps these
edges; the mixer turns them into one vectorised step per tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from appliance.errors import ApplianceError
from appliance.media.audio import Frame


class MediaError(ApplianceError):
    """Root of the media plane's errors."""


class GraphError(MediaError, ValueError):
    """A routing request that cannot be honoured (an unknown unit, a unit sending to itself)."""


class Routable(Protocol):
    """A node of the graph, known by its id: legs' RTP endpoints and conferences, which the mixer
    handles in batches, and every `MediaUnit`."""

    @property
    def id(self) -> str: ...


class MediaUnit(Routable, Protocol):
    """Anything with audio out and/or in (DESIGN section 3a): players, recorders, ASR, test probes."""

    def output(self) -> Frame | None:
        """This tick's frame, or None for silence."""

    def input(self, frame: Frame) -> None:
        """The frame routed to this unit this tick (silence when nothing sends to it)."""


class Conference:
    """A mixing point: every unit that sends to it is heard by every unit it sends to."""

    def __init__(self, unit_id: str) -> None:
        self.id = unit_id


class Graph:
    def __init__(self) -> None:
        self._units: dict[str, Routable] = {}
        self._source: dict[str, str] = {}  # sink -> its one source (sinks that are not conferences)
        self._mixed: dict[str, set[str]] = {}  # conference -> the units sending to it
        self.version = 0  # bumped on every change, so the mixer knows to re-plan

    def __contains__(self, unit_id: str) -> bool:
        return unit_id in self._units

    def __len__(self) -> int:
        return len(self._units)

    def units(self) -> Iterator[Routable]:
        return iter(self._units.values())

    def add(self, unit: Routable) -> None:
        unit_id = unit.id
        if unit_id in self._units:
            raise GraphError(f"media unit {unit_id} is already in the graph")
        self._units[unit_id] = unit
        if isinstance(unit, Conference):
            self._mixed[unit_id] = set()
        self.version += 1

    def remove(self, unit_id: str) -> None:
        """Take a unit out with every edge to and from it; unknown ids are ignored (safe twice)."""
        if self._units.pop(unit_id, None) is None:
            return
        self._source.pop(unit_id, None)
        self._mixed.pop(unit_id, None)
        for sink in [sink for sink, source in self._source.items() if source == unit_id]:
            del self._source[sink]
        for members in self._mixed.values():
            members.discard(unit_id)
        self.version += 1

    def send(self, source: str, sink: str) -> None:
        """`source.sendMediaTo(sink)`."""
        self._known(source)
        self._known(sink)
        if source == sink:
            raise GraphError(f"media unit {source} cannot send media to itself")
        if sink in self._mixed:
            self._mixed[sink].add(source)
        else:
            self._source[sink] = source
        self.version += 1

    def stop(self, source: str, sink: str) -> None:
        """`source.stopMediaTo(sink)`: only undoes that edge; another source of `sink` stays."""
        if sink in self._mixed:
            self._mixed[sink].discard(source)
        elif self._source.get(sink) == source:
            del self._source[sink]
        self.version += 1

    def source_of(self, sink: str) -> str | None:
        return self._source.get(sink)

    def mixed_into(self, conference: str) -> frozenset[str]:
        return frozenset(self._mixed.get(conference, ()))

    def _known(self, unit_id: str) -> None:
        if unit_id not in self._units:
            raise GraphError(f"no media unit {unit_id}")
