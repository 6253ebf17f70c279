"""Call-progress tones: the ToneScript grammar, a frame generator for it, and country tone plans.

ToneScript is the Cisco SPA mini-language that Voximplant's `createToneScriptPlayer` takes:
`<frequencies>;<section>[;<section>...]`, e.g. `440@-19,480@-19;*(2/4/1+2)` (US ringback). The
frequency list is `Hz@dBm` items; each section is `duration(on/off/components[,...])`: its segments
repeat in order until the section's duration is used up, then the next section plays. `*` is
forever; components `1+2` index the frequency list (1-based) and are summed; `0` means silence
(the SPA's SIT-tone example uses it). Durations carry up to 3 decimals (1 ms) and levels 1 decimal,
as on the SPA, so every script maps exactly onto whole samples and serialises back unchanged.

The generator models a telephone exchange's tone bank: one free-running oscillator per frequency,
switched onto the line by the cadence. So a sine's phase never jumps, neither between frames nor
between two bursts of the same component, and a loop restart is seamless. Each burst fades in and
out over `RAMP_MS` with a raised-cosine ramp placed *inside* the burst, so the off-periods stay
truly silent and no edge clicks; a component on in two adjoining segments is not ramped at the join.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from appliance.media.audio import FRAME, RATE, SAMPLE, Frame
from appliance.media.dtmf_tones import ZERO_DBM0_PEAK
from appliance.media.graph import MediaError

MAX_SCRIPT_CHARS = 512  # the SPA allows 127; real tones need far fewer, and the bound keeps parsing trivial
MAX_FREQUENCIES = 8  # the SPA allows 6; no tone plan uses more than 4 (the US off-hook warning)
MAX_SECTIONS = 8  # the SPA allows 2
MAX_SEGMENTS = 8  # per section; the SPA allows 6
MIN_FREQUENCY_HZ = 20  # below this a "tone" is a DC wobble the line's coupling removes
MAX_FREQUENCY_HZ = RATE // 2  # exclusive: at or above Nyquist a sine aliases back into the band
MIN_LEVEL_DBM = -60.0  # inaudible below, and below the G.711 noise floor
MAX_LEVEL_DBM = 3.0  # a +3.17 dBm0 sine is G.711 full scale; one component may come that close
LEVEL_DECIMALS = 1
DURATION_DECIMALS = 3  # 1 ms resolution: 8 samples, so cadences land exactly on samples
MAX_DURATION_S = 3600  # a finite duration longer than an hour is a typo for `*`
RAMP_MS = 2  # fade at every burst edge: long enough to leave no click, short next to any cadence

RAMP = RATE * RAMP_MS // 1000  # samples
_SAMPLES_PER_MS = RATE // 1000
if RATE % 1000:
    raise ImportError(f"{RATE} Hz audio has no whole number of samples per millisecond")

_FOREVER = "*"
_UINT = re.compile(r"\d+")
_LEVEL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DURATION = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_BLANKS = " \t"


class ToneError(MediaError, ValueError):
    """Root of this module's bad-input errors."""


class ToneScriptError(ToneError):
    """A ToneScript that does not parse or asks for something absurd; `position` is 0-based in the text."""

    def __init__(self, text: str, position: int, problem: str) -> None:
        super().__init__(f"ToneScript {text!r}, position {position}: {problem}")
        self.text = text
        self.position = position
        self.problem = problem


class ProgressToneError(ToneError):
    """A country or kind of progress tone that is not in the table."""


@dataclass(frozen=True)
class Component:
    frequency_hz: int
    level_dbm: float  # per component, dBm0; 0 dBm0 is a sine ZERO_DBM0_PEAK high


@dataclass(frozen=True)
class Segment:
    on_ms: int | None  # None: forever
    off_ms: int | None
    components: tuple[int, ...]  # 1-based indices into the frequency list; empty: silence


@dataclass(frozen=True)
class Section:
    duration_ms: int | None  # None: forever
    segments: tuple[Segment, ...]


def _format_ms(ms: int | None) -> str:
    """SPA style: `*`, `2`, `.5`, `1.25`."""
    if ms is None:
        return _FOREVER
    seconds, rest = divmod(ms, 1000)
    if not rest:
        return str(seconds)
    fraction = f"{rest:03d}".rstrip("0")
    return f".{fraction}" if seconds == 0 else f"{seconds}.{fraction}"


def _format_level(level: float) -> str:
    return f"{level:.{LEVEL_DECIMALS}f}".removesuffix(".0")


@dataclass(frozen=True)
class ToneScript:
    frequencies: tuple[Component, ...]
    sections: tuple[Section, ...]

    @classmethod
    def parse(cls, text: str) -> ToneScript:
        return _Parser(text).script()

    def serialize(self) -> str:
        freqs = ",".join(f"{c.frequency_hz}@{_format_level(c.level_dbm)}" for c in self.frequencies)
        sections = [
            f"{_format_ms(s.duration_ms)}("
            + ",".join(
                f"{_format_ms(g.on_ms)}/{_format_ms(g.off_ms)}/{'+'.join(map(str, g.components)) or '0'}"
                for g in s.segments
            )
            + ")"
            for s in self.sections
        ]
        return ";".join([freqs, *sections])

    def __str__(self) -> str:
        return self.serialize()

    @property
    def duration_ms(self) -> int | None:
        """One pass through all sections; None if some section lasts forever."""
        total = 0
        for section in self.sections:
            if section.duration_ms is None:
                return None
            total += section.duration_ms
        return total


class _Parser:
    """Recursive descent over the text, keeping the position of every token for error messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str, position: int | None = None) -> ToneScriptError:
        return ToneScriptError(self.text, self.pos if position is None else position, problem)

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _BLANKS:
            self.pos += 1

    def _found(self) -> str:
        return f"found {self.text[self.pos]!r}" if self.pos < len(self.text) else "found the end"

    def _accept(self, char: str) -> bool:
        self._skip()
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def _expect(self, char: str, what: str) -> None:
        if not self._accept(char):
            raise self.fail(f"expected {char!r} {what}, {self._found()}")

    def _token(self, pattern: re.Pattern[str], what: str) -> tuple[str, int]:
        self._skip()
        match = pattern.match(self.text, self.pos)
        if match is None:
            raise self.fail(f"expected {what}, {self._found()}")
        self.pos = match.end()
        return match.group(), match.start()

    def script(self) -> ToneScript:
        if len(self.text) > MAX_SCRIPT_CHARS:
            raise self.fail(f"longer than {MAX_SCRIPT_CHARS} characters ({len(self.text)})", 0)
        frequencies = [self.component()]
        while self._accept(","):
            if len(frequencies) == MAX_FREQUENCIES:
                raise self.fail(f"more than {MAX_FREQUENCIES} frequencies")
            frequencies.append(self.component())
        self._skip()
        if self.pos == len(self.text):
            raise self.fail("no cadence: expected ';' and a section such as '*(2/4/1)'")
        sections: list[Section] = []
        while self._accept(";"):
            if len(sections) == MAX_SECTIONS:
                raise self.fail(f"more than {MAX_SECTIONS} sections")
            sections.append(self.section(len(frequencies), len(sections) + 1))
        self._skip()
        if self.pos < len(self.text):
            raise self.fail(f"expected ',' or ';', {self._found()}")
        return ToneScript(tuple(frequencies), tuple(sections))

    def component(self) -> Component:
        digits, start = self._token(_UINT, "a frequency in whole Hz")
        frequency = int(digits)
        if self.text.startswith(".", self.pos):
            raise self.fail("a frequency is a whole number of Hz")
        if not MIN_FREQUENCY_HZ <= frequency < MAX_FREQUENCY_HZ:
            raise self.fail(
                f"frequency {frequency} Hz is outside {MIN_FREQUENCY_HZ}..{MAX_FREQUENCY_HZ - 1} Hz "
                f"(audio at {RATE} Hz cannot carry {MAX_FREQUENCY_HZ} Hz or more)",
                start,
            )
        self._expect("@", "and a level in dBm after the frequency")
        text, start = self._token(_LEVEL, "a level in dBm such as -19")
        if "." in text and len(text.partition(".")[2]) > LEVEL_DECIMALS:
            raise self.fail(f"level {text} has more than {LEVEL_DECIMALS} decimal place", start)
        level = float(text)
        if not MIN_LEVEL_DBM <= level <= MAX_LEVEL_DBM:
            raise self.fail(f"level {text} dBm is outside {MIN_LEVEL_DBM:g}..{MAX_LEVEL_DBM:+g} dBm", start)
        return Component(frequency, level)

    def duration(self, what: str) -> int | None:
        """Milliseconds, or None for `*`."""
        if self._accept(_FOREVER):
            return None
        text, start = self._token(_DURATION, f"{what} in seconds or '*'")
        whole, _, fraction = text.partition(".")
        if len(fraction) > DURATION_DECIMALS:
            raise self.fail(f"{what} {text} has more than {DURATION_DECIMALS} decimal places (1 ms steps)", start)
        ms = int(whole or "0") * 1000 + int(fraction.ljust(DURATION_DECIMALS, "0"))
        if ms > MAX_DURATION_S * 1000:
            raise self.fail(f"{what} {text} s is longer than {MAX_DURATION_S} s; write '*' for forever", start)
        return ms

    def section(self, n_frequencies: int, number: int) -> Section:
        self._skip()
        start = self.pos
        duration = self.duration(f"section {number} duration")
        if duration == 0:
            raise self.fail(f"section {number} lasts 0 s", start)
        self._expect("(", f"to open section {number}'s segments")
        segments = [self.segment(n_frequencies)]
        while self._accept(","):
            if len(segments) == MAX_SEGMENTS:
                raise self.fail(f"section {number} has more than {MAX_SEGMENTS} segments")
            segments.append(self.segment(n_frequencies))
        self._expect(")", f"to close section {number}")
        # A section whose segments take no time would repeat them endlessly without producing audio.
        if all(s.on_ms == 0 and s.off_ms == 0 for s in segments):
            raise self.fail(f"section {number}'s segments all last 0 s, so it can never advance", start)
        return Section(duration, tuple(segments))

    def segment(self, n_frequencies: int) -> Segment:
        on = self.duration("on time")
        self._expect("/", "after the on time")
        off = self.duration("off time")
        self._expect("/", "after the off time")
        components: list[int] = []
        while True:
            digits, start = self._token(_UINT, "a component number (1-based, or 0 for silence)")
            index = int(digits)
            if index == 0:
                if components or self._accept_peek("+"):
                    raise self.fail("component 0 means silence and cannot be combined with others", start)
                return Segment(on, off, ())
            if not 1 <= index <= n_frequencies:
                raise self.fail(
                    f"component {index} does not exist: the script lists {n_frequencies} "
                    f"frequenc{'y' if n_frequencies == 1 else 'ies'}",
                    start,
                )
            if index in components:
                raise self.fail(f"component {index} is listed twice", start)
            components.append(index)
            if not self._accept("+"):
                return Segment(on, off, tuple(components))

    def _accept_peek(self, char: str) -> bool:
        """Whether `char` comes next, without consuming it."""
        self._skip()
        return self.text.startswith(char, self.pos)


def _runs(script: ToneScript) -> Iterator[tuple[int, int | None]]:
    """One pass of the cadence as (component bit mask, samples or None for forever), in order."""
    for section in script.sections:
        left = None if section.duration_ms is None else section.duration_ms * _SAMPLES_PER_MS
        while left is None or left > 0:
            for segment in section.segments:
                mask = sum(1 << (i - 1) for i in segment.components)
                for run_mask, ms in ((mask, segment.on_ms), (0, segment.off_ms)):
                    if ms is None:  # forever within this section: it fills what is left of it
                        yield run_mask, left
                        if left is None:
                            return
                        left = 0
                    elif ms:
                        take = ms * _SAMPLES_PER_MS if left is None else min(ms * _SAMPLES_PER_MS, left)
                        yield run_mask, take
                        if left is not None:
                            left -= take
                    if left == 0:
                        break
                if left == 0:
                    break


# Gain of a sample that is d samples inside a burst (1 = its first or last sample): a raised cosine
# over RAMP samples, symmetric so that a burst's start and end fade the same way.
_RAMP_GAIN = np.sin(np.pi / 2 * np.clip((np.arange(RAMP + 2) - 0.5) / RAMP, 0, 1)) ** 2
_FAR = 1 << 30


class ToneGenerator:
    """Plays a ToneScript frame by frame; `next_frame()` gives None once a non-looping script ends."""

    def __init__(self, script: ToneScript, loop: bool = False) -> None:
        self.script = script
        self.loop = loop
        self._total = None if script.duration_ms is None else script.duration_ms * _SAMPLES_PER_MS
        freqs = np.array([c.frequency_hz for c in script.frequencies], dtype=np.float64)
        self._amplitudes = ZERO_DBM0_PEAK * 10 ** (np.array([c.level_dbm for c in script.frequencies]) / 20)
        self._steps = 2 * np.pi * freqs / RATE  # phase advance per sample
        self._offsets = np.outer(self._steps, np.arange(FRAME))  # one frame's phase ramp per oscillator
        self._phases = np.zeros(len(freqs))  # every oscillator starts at sine phase 0 and never stops
        self._timeline = self._masks()
        self._run_mask, self._run_left = 0, 0
        # Active-component masks for [start - RAMP, start + FRAME + RAMP): a burst's ramp depends on
        # how near its edges are, which needs RAMP samples of look-behind and look-ahead.
        self._window = np.zeros(FRAME + 2 * RAMP, dtype=np.int64)
        self._fill(self._window[RAMP:])
        self._position = 0  # samples already returned

    @property
    def duration_ms(self) -> int | None:
        """How long playback lasts; None when it never ends (a looping or forever script)."""
        return None if self.loop else self.script.duration_ms

    def _masks(self) -> Iterator[tuple[int, int | None]]:
        while True:
            yield from _runs(self.script)
            if not self.loop:
                return

    def _fill(self, out: npt.NDArray[np.int64]) -> None:
        """Write the next len(out) samples' component masks; silence after the script's end."""
        done = 0
        while done < len(out):
            if self._run_left == 0:
                next_run = next(self._timeline, None)
                if next_run is None:
                    out[done:] = 0
                    return
                self._run_mask, left = next_run
                self._run_left = _FAR if left is None else left
            take = min(self._run_left, len(out) - done)
            out[done : done + take] = self._run_mask
            if self._run_left != _FAR:  # a forever run never runs out
                self._run_left -= take
            done += take

    def next_frame(self) -> Frame | None:
        if self._total is not None and not self.loop and self._position >= self._total:
            return None
        window = self._window
        mixed = np.zeros(FRAME)
        present = int(np.bitwise_or.reduce(window[RAMP : RAMP + FRAME]))
        for k in range(len(self._steps)):
            if not present >> k & 1:
                continue
            active = (window >> k & 1).astype(bool)
            if active.all():
                gain: npt.NDArray[np.float64] | float = 1.0
            else:
                gain = _RAMP_GAIN[_distance_inside(active)[RAMP : RAMP + FRAME]]
            mixed += self._amplitudes[k] * gain * np.sin(self._phases[k] + self._offsets[k])
        self._phases = (self._phases + self._steps * FRAME) % (2 * np.pi)
        window[: 2 * RAMP] = window[FRAME:]
        self._fill(window[2 * RAMP :])
        self._position += FRAME
        # Components at absurd levels can sum past full scale: saturate like a codec, never wrap.
        return np.clip(np.rint(mixed), -32768, 32767).astype(SAMPLE)


def _distance_inside(active: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """For each sample, 1 + its distance to the nearest inactive sample (0 where inactive), capped to
    index _RAMP_GAIN; samples with no inactive neighbour in the array count as far inside."""
    index = np.arange(len(active))
    before = np.maximum.accumulate(np.where(active, -_FAR, index))
    after = np.minimum.accumulate(np.where(active, _FAR, index)[::-1])[::-1]
    return np.minimum(np.minimum(index - before, after - index), RAMP + 1)


# Call-progress tones by country, after ITU-T E.180 Supplement 2 as carried in DAHDI's zonedata.c
# (reference/hardware.md section 2.4). Levels are -19 dBm0 per component, the common choice, except
# US busy and reorder at -24 dBm0 as in the Bell precise tone plan. Russia is not in DAHDI's table:
# ringback is the ex-USSR 0.8/3.2 (Asterisk's ru zone), busy and congestion the Russian rules'
# 0.4/0.4 and 0.2/0.2. Dial tones are continuous; everything repeats until the player is stopped.
KINDS = ("ringback", "busy", "congestion", "dial")  # the order of each row below
_PROGRESS_SCRIPTS: dict[str, tuple[str, str, str, str]] = {
    "US": ("440@-19,480@-19;*(2/4/1+2)", "480@-24,620@-24;*(.5/.5/1+2)",
           "480@-24,620@-24;*(.25/.25/1+2)", "350@-19,440@-19;*(*/0/1+2)"),
    "UK": ("400@-19,450@-19;*(.4/.2/1+2,.4/2/1+2)", "400@-19;*(.375/.375/1)",
           "400@-19;*(.4/.35/1,.225/.525/1)", "350@-19,440@-19;*(*/0/1+2)"),
    "DE": ("425@-19;*(1/4/1)", "425@-19;*(.48/.48/1)",
           "425@-19;*(.24/.24/1)", "425@-19;*(*/0/1)"),
    "FR": ("440@-19;*(1.5/3.5/1)", "440@-19;*(.5/.5/1)",
           "440@-19;*(.25/.25/1)", "440@-19;*(*/0/1)"),
    "RU": ("425@-19;*(.8/3.2/1)", "425@-19;*(.4/.4/1)",
           "425@-19;*(.2/.2/1)", "425@-19;*(*/0/1)"),
    "NL": ("425@-19;*(1/4/1)", "425@-19;*(.5/.5/1)",
           "425@-19;*(.25/.25/1)", "425@-19;*(*/0/1)"),
    "IT": ("425@-19;*(1/4/1)", "425@-19;*(.5/.5/1)",
           "425@-19;*(.2/.2/1)", "425@-19;*(.2/.2/1,.6/1/1)"),
    "ES": ("425@-19;*(1.5/3/1)", "425@-19;*(.2/.2/1)",
           "425@-19;*(.2/.2/1,.2/.2/1,.2/.6/1)", "425@-19;*(*/0/1)"),
    "CN": ("450@-19;*(1/4/1)", "450@-19;*(.35/.35/1)",
           "450@-19;*(.7/.7/1)", "450@-19;*(*/0/1)"),
}  # fmt: skip
PROGRESS_TONES: dict[str, dict[str, ToneScript]] = {
    country: {kind: ToneScript.parse(text) for kind, text in zip(KINDS, texts, strict=True)}
    for country, texts in _PROGRESS_SCRIPTS.items()
}  # parsed at import, so a typo in the table fails loudly at start-up
COUNTRY_ALIASES = {
    "USA": "US", "CA": "US", "GB": "UK", "GBR": "UK", "DEU": "DE", "FRA": "FR", "RUS": "RU",
    "NLD": "NL", "ITA": "IT", "ESP": "ES", "CHN": "CN",
}  # fmt: skip
KIND_ALIASES = {"reorder": "congestion", "ring": "ringback", "ringing": "ringback"}


def progress_tone(country: str, kind: str = "ringback") -> ToneScript:
    """The country's call-progress tone: kind is ringback, busy, congestion (alias reorder) or dial."""
    code = country.strip().upper()
    code = COUNTRY_ALIASES.get(code, code)
    tones = PROGRESS_TONES.get(code)
    if tones is None:
        known = ", ".join(sorted([*PROGRESS_TONES, *COUNTRY_ALIASES]))
        raise ProgressToneError(f"no progress tones for country {country!r}; known: {known}")
    name = kind.strip().lower()
    name = KIND_ALIASES.get(name, name)
    if name not in tones:
        raise ProgressToneError(f"no progress tone of kind {kind!r}; known: {', '.join(KINDS)} (reorder = congestion)")
    return tones[name]

