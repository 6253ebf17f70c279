"""Virtual phones for the offline harness: the far ends of local calls, with behaviour and ears.

A `VirtualPhone` holds one leg of a `LocalCall`: the caller of `appliance exec --call` (it dials the
scenario and presses `--dtmf` keys once connected), or a number the scenario dials (it answers,
rings out, is busy or rejects, as `--peer` says). Its media unit hears what the scenario sends it,
which is kept for `--record-to`, and says the keys it presses as DTMF tones.
"""

from __future__ import annotations

import functools
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.clock import Clock
from appliance.legs.leg import Connected, Disconnected, Dtmf, Failed, LegEvent, LegState, TransferRequested
from appliance.legs.local import LocalLeg
from appliance.media.audio import RATE, Frame
from appliance.media.dtmf_tones import DtmfGenerator
from appliance.media.plane import MediaPlane

RING_SECONDS = 1.0  # how long a dialled virtual phone rings before it answers ("answer")
FIRST_KEY_SECONDS = 1.0  # the caller starts pressing --dtmf keys this long after the answer
KEY_SECONDS = 0.5  # between two keys; 'p' in --dtmf waits one more second
BEHAVIOURS = "answer, answer-after:SECONDS, busy, noanswer, reject:CODE; add ,hangup-after:SECONDS to hang up"


@dataclass(frozen=True)
class Behaviour:
    """What a dialled virtual phone does: answer after `answer_after` s, or refuse with `code`, or ring
    forever (neither); then maybe hang up `hangup_after` s after answering."""

    answer_after: float | None = RING_SECONDS
    code: int | None = None
    hangup_after: float | None = None

    @staticmethod
    def parse(text: str) -> Behaviour:
        """`--peer` text after the '='; ValueError naming what is wrong."""
        answer_after: float | None = None
        code: int | None = None
        hangup_after: float | None = None
        parts = [part.strip() for part in text.split(",")]
        for part in parts:
            name, _, value = part.partition(":")
            try:
                if name == "answer" and not value:
                    answer_after = RING_SECONDS
                elif name == "answer-after":
                    answer_after = _seconds(value)
                elif name == "busy" and not value:
                    code = 486
                elif name == "noanswer" and not value:
                    pass
                elif name == "reject":
                    code = int(value)
                    if not 300 <= code <= 699:
                        raise ValueError
                elif name == "hangup-after":
                    hangup_after = _seconds(value)
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{part!r} is not a behaviour (one of: {BEHAVIOURS})") from None
        if answer_after is not None and code is not None:
            raise ValueError(f"{text!r} both answers and refuses")
        return Behaviour(answer_after, code, hangup_after)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not 0 <= seconds <= 3600:
        raise ValueError
    return seconds


class PhoneMedia:
    """A virtual phone's ear and mouth: keeps what it hears, says the keys it presses."""

    def __init__(self, unit_id: str) -> None:
        self.id = unit_id
        self.heard: list[Frame] = []
        self.keys: DtmfGenerator | None = None

    def output(self) -> Frame | None:
        if self.keys is None:
            return None
        frame = self.keys.next_frame()
        if frame is None:
            self.keys = None
        return frame

    def input(self, frame: Frame) -> None:
        self.heard.append(frame.copy())

    def write_wav(self, path: Path) -> None:
        """What the phone heard, 16-bit 8 kHz mono."""
        audio = np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.int16)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(audio.astype("<i2").tobytes())


class VirtualPhone:
    def __init__(self, name: str, leg: LocalLeg, plane: MediaPlane, clock: Clock,
                 report: Callable[[str], None]) -> None:
        self.name = name
        self.leg = leg
        self._plane = plane
        self._clock = clock
        self._report = report  # a line about what the phone saw, for the harness's standard error
        self.media = PhoneMedia(f"phone-{leg.id}")
        plane.graph.add(self.media)
        plane.send(leg.media.id, self.media.id)
        plane.send(self.media.id, leg.media.id)
        self.on_connected: Callable[[], None] = lambda: None
        leg.on_event = self._on_event

    def _on_event(self, event: LegEvent) -> None:
        if isinstance(event, Connected):
            self._report(f"{self.name}: connected")
            self.on_connected()
        elif isinstance(event, Dtmf):
            self._report(f"{self.name}: heard key {event.tone}")
        elif isinstance(event, TransferRequested):
            # A virtual phone can reach anyone: the transfer succeeds at once.
            self._report(f"{self.name}: transferred to {event.target}")
            self.leg.transfer_outcome(True, 200, "OK")
        elif isinstance(event, (Disconnected, Failed)):
            self._report(f"{self.name}: call ended, {event.code} {event.reason}")
            self._plane.release(self.media)

    def press(self, keys: str) -> None:
        """Press `keys` one by one ('p' waits a second), as events and as tones in the audio."""
        delay = FIRST_KEY_SECONDS
        for key in keys:
            if key in "pP":
                delay += 1.0
                continue
            self._clock.call_later(delay, functools.partial(self._press, key))
            delay += KEY_SECONDS

    def _press(self, key: str) -> None:
        if self.leg.state is LegState.CONNECTED:
            self._report(f"{self.name}: presses {key}")
            self.media.keys = DtmfGenerator(key)
            self.leg.send_dtmf(key)

    def behave(self, behaviour: Behaviour) -> None:
        """A dialled phone: ring, then answer or refuse as told."""
        leg = self.leg
        if behaviour.code is not None:
            leg.reject(behaviour.code)
            return
        leg.ring()
        if behaviour.answer_after is None:
            return
        self._clock.call_later(behaviour.answer_after, leg.answer)
        if behaviour.hangup_after is not None:
            self._clock.call_later(behaviour.answer_after + behaviour.hangup_after, leg.hangup)
