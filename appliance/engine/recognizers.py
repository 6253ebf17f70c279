"""A session's speech recognisers: `VoxEngine.createASR()` and `call.sendMediaTo(asr)`.

An ASR is a media unit that hears whatever is sent to it and feeds the shared ASR thread
(media/asr.py); its events come back as `ASR.*`. Only languages with a local model are
recognised; any other profile or language gives ASR.Error at once, as a missing cloud profile
would. The grammar comes from the parameters: `phraseHints` (or the legacy `dict`) restrict
recognition to those words; `request: {grammar: "digits" | "yesno"}` picks a built-in grammar;
otherwise free speech.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from appliance.clock import Clock
from appliance.media.asr import AsrError, AsrThread, Grammar, Recognizer, language_for, unsupported_message
from appliance.media.audio import Frame
from appliance.media.plane import MediaPlane

log = logging.getLogger(__name__)

Command = dict[str, Any]
EVENT_NAMES = {"ASRError": "Error"}  # the recogniser's names -> ASREvents' (ASR.Error)


class AsrUnit:
    """The graph's view of a recogniser: it only listens."""

    def __init__(self, unit_id: str, recognizer: Recognizer) -> None:
        self.id = unit_id
        self.recognizer = recognizer

    def output(self) -> Frame | None:
        return None

    def input(self, frame: Frame) -> None:
        self.recognizer.feed(frame)


def grammar_for(cmd: Command) -> Grammar | None:
    request = cmd.get("request") or {}
    named = str(request.get("grammar", "")).lower() if isinstance(request, dict) else ""
    if named == "digits":
        return Grammar.digits()
    if named in ("yesno", "yes_no"):
        return Grammar.yes_no()
    hints = cmd.get("phraseHints") or cmd.get("dict") or []
    if isinstance(hints, list) and hints:
        return Grammar.words([str(hint) for hint in hints])
    return None


class SessionRecognizers:
    def __init__(self, session_id: int, plane: MediaPlane | None, thread: AsrThread | None, clock: Clock,
                 deliver: Callable[[Command], None]) -> None:
        self._session_id = session_id
        self._plane = plane
        self._thread = thread
        self._clock = clock
        self._deliver = deliver
        self._units: dict[str, tuple[AsrUnit, float]] = {}  # by JS id: the unit and when it started

    def unit_of(self, js_id: str) -> str | None:
        entry = self._units.get(js_id)
        return entry[0].id if entry is not None else None

    def _event(self, js_id: str, name: str, data: dict[str, Any]) -> None:
        self._deliver({"type": "asr", "id": js_id, "name": f"ASR.{EVENT_NAMES.get(name, name)}", "data": data})

    def apply(self, cmd: Command) -> None:
        js_id, action = str(cmd["id"]), cmd.get("action")
        if action == "create":
            self._create(js_id, cmd)
        elif action == "stop":
            entry = self._units.get(js_id)
            self._drop(js_id)
            if entry is not None:
                duration = self._clock.monotonic() - entry[1]
                self._event(js_id, "Stopped", {"cost": 0, "duration": round(duration)})

    def _create(self, js_id: str, cmd: Command) -> None:
        profile = str(cmd.get("profile") or cmd.get("lang") or "")
        language = language_for(profile)
        if language is None:
            self._event(js_id, "ASRError", {"error": unsupported_message(profile or "(no profile)")})
            return
        if self._plane is None or self._thread is None:
            self._event(js_id, "ASRError", {"error": "speech recognition is not available in this engine"})
            return
        try:
            recognizer = Recognizer(
                self._thread, on_event=lambda name, data: self._event(js_id, name, dict(data)), language=language,
                grammar=grammar_for(cmd), single_utterance=bool(cmd.get("singleUtterance")),
                interim=bool(cmd.get("interimResults")))
        except AsrError as exc:
            self._event(js_id, "ASRError", {"error": str(exc)})
            return
        unit = AsrUnit(f"s{self._session_id}-{js_id}", recognizer)
        self._units[js_id] = (unit, self._clock.monotonic())
        self._plane.graph.add(unit)
        self._event(js_id, "Started", {})

    def _drop(self, js_id: str) -> None:
        entry = self._units.pop(js_id, None)
        if entry is None:
            return
        entry[0].recognizer.close()
        if self._plane is not None:
            self._plane.release(entry[0])

    def close(self) -> None:
        """The session ended: every recogniser stops, without events."""
        for js_id in list(self._units):
            self._drop(js_id)
