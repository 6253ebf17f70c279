"""ToneScript parsing and tone generation, checked by measuring the audio the generator produces.

Frequencies come from an FFT, levels and phases from a least-squares sine fit, cadences from an
envelope detector; the expectations are written out here (from reference/hardware.md section 2.4),
not taken from the module's own table.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.audio import FRAME, RATE
from appliance.media.tones import (
    MAX_FREQUENCIES,
    MAX_SECTIONS,
    MAX_SEGMENTS,
    PROGRESS_TONES,
    RAMP_MS,
    ProgressToneError,
    ToneGenerator,
    ToneScript,
    ToneScriptError,
    progress_tone,
)

Signal = npt.NDArray[np.float64]

ZERO_DBM0_PEAK = 32767 * 10 ** (-3.17 / 20)  # a 0 dBm0 sine is 3.17 dB below 16-bit full scale
RAMP = RATE * RAMP_MS // 1000
EDGE_TOLERANCE_MS = 5.0
FREQUENCY_TOLERANCE_HZ = 2.0
LEVEL_TOLERANCE_DB = 0.5

EXAMPLES = [
    "350@-19,440@-19;10(*/0/1+2)",  # US dial tone, 10 s
    "440@-19,480@-19;*(2/4/1+2)",  # US ringback
    "480@-24,620@-24;*(.5/.5/1+2)",  # US busy
    "350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)",  # stutter dial tone
    "985@-16,1428@-16,1777@-16;20(.38/0/1,.38/0/2,.38/0/3,0/4/0)",  # SIT, from the SPA guide
]


def render(text: str, frames: int, loop: bool = False) -> Signal:
    generator = ToneGenerator(ToneScript.parse(text), loop=loop)
    out = []
    for _ in range(frames):
        frame = generator.next_frame()
        assert frame is not None
        assert frame.shape == (FRAME,) and frame.dtype == np.int16
        out.append(frame)
    return np.concatenate(out).astype(np.float64)


def peak(level_dbm: float) -> float:
    return ZERO_DBM0_PEAK * 10 ** (level_dbm / 20)


def bursts(x: Signal, threshold: float) -> list[tuple[int, int]]:
    """(start, end) samples of each stretch where the envelope (a 2.5 ms sliding maximum of |x|) is above
    threshold; a sliding maximum rides over zero crossings and two-tone beat nulls."""
    half = RATE // 800  # 1.25 ms each side
    padded = np.pad(np.abs(x), half)
    envelope = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
    on = np.concatenate([[False], envelope > threshold, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[0::2], edges[1::2], strict=True)]


def cadence_ms(found: list[tuple[int, int]], length: int) -> list[float]:
    """on, off, on, off... in ms, leaving out a last burst cut by the end of the signal."""
    if found and found[-1][1] >= length:
        found = found[:-1]
    out: list[float] = []
    for i, (start, end) in enumerate(found):
        if i:
            out.append((start - found[i - 1][1]) * 1000 / RATE)
        out.append((end - start) * 1000 / RATE)
    return out


def fit(x: Signal, start: int, frequencies: list[float]) -> list[tuple[float, float]]:
    """(amplitude, phase) of each frequency by least squares, phase referred to absolute sample 0."""
    n = start + np.arange(len(x))
    basis = np.column_stack([f(2 * np.pi * hz * n / RATE) for hz in frequencies for f in (np.cos, np.sin)])
    coefficients = np.linalg.lstsq(basis, x, rcond=None)[0]
    return [
        (float(np.hypot(a, b)), float(np.arctan2(a, b)))
        for a, b in zip(coefficients[0::2], coefficients[1::2], strict=True)
    ]


def residual_rms(x: Signal, start: int, frequencies: list[float]) -> float:
    n = start + np.arange(len(x))
    basis = np.column_stack([f(2 * np.pi * hz * n / RATE) for hz in frequencies for f in (np.cos, np.sin)])
    coefficients = np.linalg.lstsq(basis, x, rcond=None)[0]
    return float(np.sqrt(np.mean((x - basis @ coefficients) ** 2)))


def spectrum_peaks(x: Signal, count: int) -> list[float]:
    """The count strongest spectral peaks in Hz: Hann window, zero padding, parabolic interpolation."""
    size = 1 << 17
    magnitude = np.log(np.abs(np.fft.rfft(x * np.hanning(len(x)), size)) + 1e-9)
    local = np.flatnonzero((magnitude[1:-1] > magnitude[:-2]) & (magnitude[1:-1] >= magnitude[2:])) + 1
    strongest = sorted(local[np.argsort(magnitude[local])[-count:]])
    found = []
    for k in strongest:
        a, b, c = magnitude[k - 1 : k + 2]
        found.append((k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / size)
    return found


def max_step(frequencies: list[float], amplitudes: list[float]) -> float:
    """The largest sample-to-sample change a sum of these sines can make, plus rounding."""
    return float(sum(2 * a * np.sin(np.pi * f / RATE) for f, a in zip(frequencies, amplitudes, strict=True))) + 1


# --- parsing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_round_trip(text: str) -> None:
    script = ToneScript.parse(text)
    assert script.serialize() == text
    assert ToneScript.parse(script.serialize()) == script


def test_structure_of_stutter_tone() -> None:
    script = ToneScript.parse("350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)")
    assert [(c.frequency_hz, c.level_dbm) for c in script.frequencies] == [(350, -19.0), (440, -19.0)]
    assert [s.duration_ms for s in script.sections] == [2000, 10000]
    first, second = (s.segments[0] for s in script.sections)
    assert (first.on_ms, first.off_ms, first.components) == (100, 100, (1, 2))
    assert (second.on_ms, second.off_ms, second.components) == (None, 0, (1, 2))
    assert script.duration_ms == 12000
    assert ToneScript.parse("440@-19,480@-19;*(2/4/1+2)").duration_ms is None


def test_loose_spelling_normalises() -> None:
    script = ToneScript.parse(" 440 @ +3.0 , 480@-19.5 ; * ( 0.500 / .5 / 2 + 1 , 0/1.250/0 ) ")
    assert script.serialize() == "440@3,480@-19.5;*(.5/.5/2+1,0/1.25/0)"


@pytest.mark.parametrize("country", sorted(PROGRESS_TONES))
def test_country_tones_round_trip(country: str) -> None:
    for script in PROGRESS_TONES[country].values():
        assert ToneScript.parse(script.serialize()) == script
        assert ToneScript.parse(script.serialize()).serialize() == script.serialize()


BAD_SCRIPTS = [
    ("", 0, "expected a frequency"),
    ("440@-19", 7, "no cadence"),
    ("440@-19;", 8, "section 1 duration"),
    ("440-19;*(1/1/1)", 3, "expected '@'"),
    ("440@;*(1/1/1)", 4, "level in dBm"),
    ("440@-19,,480@-19;*(1/1/1)", 8, "expected a frequency"),
    ("440.5@-19;*(1/1/1)", 3, "whole number of Hz"),
    ("abc@-19;*(1/1/1)", 0, "expected a frequency"),
    ("4000@-19;*(1/1/1)", 0, "4000 Hz or more"),
    ("10@-19;*(1/1/1)", 0, "outside 20..3999 Hz"),
    ("440@-61;*(1/1/1)", 4, "outside -60..+3 dBm"),
    ("440@4;*(1/1/1)", 4, "outside -60..+3 dBm"),
    ("440@-19.25;*(1/1/1)", 4, "more than 1 decimal place"),
    ("440@-19;*(1/1/2)", 14, "component 2 does not exist"),
    ("440@-19;*(1/1/1+1)", 16, "listed twice"),
    ("440@-19;*(1/1/0+1)", 14, "cannot be combined"),
    ("440@-19;*(1/1/)", 14, "component number"),
    ("440@-19;*(1/1)", 13, "expected '/' after the off time"),
    ("440@-19;*(/1/1)", 10, "on time in seconds"),
    ("440@-19;*(1/1/1", 15, "to close section 1"),
    ("440@-19;*1/1/1)", 9, "to open section 1"),
    ("440@-19;*(1/1/1))", 16, "expected ',' or ';'"),
    ("440@-19;*(1/1/1);", 17, "section 2 duration"),
    ("440@-19;*(1/1/1),", 16, "expected ',' or ';'"),
    ("440@-19;*(1.0001/1/1)", 10, "more than 3 decimal places"),
    ("440@-19;*(1/3601/1)", 12, "longer than 3600 s"),
    ("440@-19;0(1/1/1)", 8, "lasts 0 s"),
    ("440@-19;5(0/0/1)", 8, "can never advance"),
    ("440@-19;*(1/1/1x)", 15, "expected ')' to close section 1"),
    (",".join(["440@-19"] * (MAX_FREQUENCIES + 1)) + ";*(1/1/1)", 8 * MAX_FREQUENCIES, "more than 8 frequencies"),
    ("440@-19" + ";1(1/1/1)" * (MAX_SECTIONS + 1), 8 + 9 * MAX_SECTIONS, "more than 8 sections"),
    ("440@-19;*(" + ",".join(["1/1/1"] * (MAX_SEGMENTS + 1)) + ")", 10 + 6 * MAX_SEGMENTS, "more than 8 segments"),
    ("440@-19;*(1/1/1)" + " " * 600, 0, "longer than 512 characters"),
]


@pytest.mark.parametrize(("text", "position", "problem"), BAD_SCRIPTS)
def test_bad_scripts(text: str, position: int, problem: str) -> None:
    with pytest.raises(ToneScriptError) as caught:
        ToneScript.parse(text)
    assert isinstance(caught.value, ValueError)
    assert problem in caught.value.problem
    assert caught.value.position == position, str(caught.value)
    assert f"position {position}" in str(caught.value)


# --- generated audio ---------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [-60.0, -30.0, -19.0, -10.0, 0.0, 3.0])
@pytest.mark.parametrize("hz", [300, 425, 1000, 3400, 3950])
def test_single_tone_frequency_and_level(hz: int, level: float) -> None:
    x = render(f"{hz}@{level:g};*(*/0/1)", 25)  # 0.5 s
    steady = x[RAMP * 2 :]
    (found,) = spectrum_peaks(steady, 1)
    assert abs(found - hz) <= FREQUENCY_TOLERANCE_HZ
    ((amplitude, _),) = fit(steady, RAMP * 2, [hz])
    assert abs(20 * np.log10(amplitude / ZERO_DBM0_PEAK) - level) <= LEVEL_TOLERANCE_DB


def test_tone_just_below_nyquist() -> None:
    """3999 Hz is allowed; an FFT cannot resolve it from its mirror at 4001 Hz, so fit it instead."""
    x = render("3999@-19;*(*/0/1)", 25)[2 * RAMP :]
    ((amplitude, _),) = fit(x, 2 * RAMP, [3999])
    assert 20 * np.log10(amplitude / ZERO_DBM0_PEAK) == pytest.approx(-19, abs=LEVEL_TOLERANCE_DB)
    assert residual_rms(x, 2 * RAMP, [3999]) < 0.35


def test_two_tones_frequencies_levels_and_frame_continuity() -> None:
    x = render("350@-13,440@-19.5;*(*/0/1+2)", 50)  # 1 s, 50 frames
    steady = x[RAMP:]
    assert [round(f, 1) for f in spectrum_peaks(steady, 2)] == pytest.approx([350, 440], abs=FREQUENCY_TOLERANCE_HZ)
    (a1, _), (a2, _) = fit(steady, RAMP, [350, 440])
    assert 20 * np.log10(a1 / ZERO_DBM0_PEAK) == pytest.approx(-13, abs=LEVEL_TOLERANCE_DB)
    assert 20 * np.log10(a2 / ZERO_DBM0_PEAK) == pytest.approx(-19.5, abs=LEVEL_TOLERANCE_DB)
    # One pair of sines explains the whole second to within int16 rounding (0.29 LSB rms): no phase
    # step at any of the 49 frame boundaries.
    assert residual_rms(steady, RAMP, [350, 440]) < 0.35
    assert np.abs(np.diff(x)).max() <= max_step([350, 440], [peak(-13), peak(-19.5)])


def test_phase_continues_across_bursts() -> None:
    """The oscillators run on through the off-periods, like an exchange's tone bank."""
    x = render("440@-19,480@-19;*(.3/.2/1+2)", 75)  # 1.5 s: three bursts
    found = bursts(x, 0.1 * 2 * peak(-19))
    assert len(found) == 3
    phases = []
    for start, end in found:
        inner = slice(start + 2 * RAMP, end - 2 * RAMP)
        phases.append([phase for _, phase in fit(x[inner], inner.start, [440, 480])])
    for later in phases[1:]:
        for a, b in zip(phases[0], later, strict=True):
            assert abs(np.angle(np.exp(1j * (a - b)))) < 0.01
    assert np.abs(np.diff(x)).max() <= max_step([440, 480], [peak(-19)] * 2)


def test_edges_are_ramped() -> None:
    amplitude = peak(-10)
    x = render("1000@-10;*(.1/.1/1)", 50)
    assert len(bursts(x, 0.05 * amplitude)) == 5
    # Within RAMP samples of each nominal edge the signal stays under a raised-cosine envelope that
    # starts near zero; past it the full level is back; the off-periods are digital silence.
    envelope = amplitude * np.sin(np.pi / 2 * (np.arange(RAMP) + 1) / RAMP) ** 2 + 1
    for start in range(0, len(x), 1600):
        end = start + 800
        assert (np.abs(x[start : start + RAMP]) <= envelope).all()
        assert (np.abs(x[end - RAMP : end]) <= envelope[::-1]).all()
        assert abs(x[start]) <= 0.01 * amplitude and abs(x[end - 1]) <= 0.01 * amplitude
        assert np.abs(x[start + RAMP : start + RAMP + 8]).max() >= 0.95 * amplitude
        assert not x[end : start + 1600].any()
    # No sample step exceeds what the sine itself makes: no click anywhere.
    assert np.abs(np.diff(x)).max() <= max_step([1000], [amplitude])


def test_component_on_in_adjoining_segments_is_not_ramped() -> None:
    """`.5/0/1` repeated is one unbroken tone: ramps only where the component really stops."""
    x = render("440@-19;2(.5/0/1)", 100)
    steady = x[RAMP : -RAMP]
    assert residual_rms(steady, RAMP, [440]) < 0.35


def test_switching_components_back_to_back() -> None:
    """SIT-like: 985, 1428, 1777 Hz each 380 ms with no gap; each tone's frequency and span measured."""
    x = render("985@-16,1428@-16,1777@-16;1.5(.38/0/1,.38/0/2,.38/0/3,0/.36/0)", 75)
    for i, hz in enumerate([985, 1428, 1777]):
        start, end = i * 380 * 8, (i + 1) * 380 * 8
        (found,) = spectrum_peaks(x[start + 2 * RAMP : end - 2 * RAMP], 1)
        assert abs(found - hz) <= FREQUENCY_TOLERANCE_HZ
        ((amplitude, _),) = fit(x[start + 2 * RAMP : end - 2 * RAMP], start + 2 * RAMP, [hz])
        assert 20 * np.log10(amplitude / ZERO_DBM0_PEAK) == pytest.approx(-16, abs=LEVEL_TOLERANCE_DB)
    assert not x[3 * 380 * 8 :].any()
    assert np.abs(np.diff(x)).max() <= max_step([1777], [peak(-16)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("480@-24,620@-24;*(.5/.5/1+2)", [500, 500] * 3 + [500]),
        ("440@-19,480@-19;*(2/4/1+2)", [2000, 4000, 2000]),
        ("350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)", [100, 100] * 9 + [100]),
        ("425@-19;*(.008/.016/1)", [8, 16] * 20),  # a burst shorter than two ramps still shows
    ],
)
def test_cadence_by_envelope(text: str, expected: list[float]) -> None:
    script = ToneScript.parse(text)
    frames = -(-sum(expected) // 20) + 10
    x = render(text, int(frames))
    level = sum(peak(c.level_dbm) for c in script.frequencies)
    measured = cadence_ms(bursts(x, 0.1 * level), len(x))[: len(expected)]
    assert measured == pytest.approx(expected, abs=EDGE_TOLERANCE_MS)


def test_stutter_then_steady() -> None:
    x = render("350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)", 600)
    found = bursts(x, 0.1 * 2 * peak(-19))
    assert len(found) == 11  # ten stutters, then the steady tone
    start, end = found[-1]
    assert start == pytest.approx(2000 * 8, abs=EDGE_TOLERANCE_MS * 8)  # after the 10th off-period
    assert end == pytest.approx(12000 * 8, abs=EDGE_TOLERANCE_MS * 8)


@pytest.mark.parametrize(
    ("text", "frames"),
    [
        ("440@-19;1(.3/.2/1)", 50),
        ("440@-19;1.01(.3/.2/1)", 51),  # the last frame is partly silence
        ("440@-19;.001(*/0/1)", 1),
        ("350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)", 600),
        ("440@-19;.5(.1/.1/1);.5(0/*/0)", 50),
    ],
)
def test_finite_scripts_end(text: str, frames: int) -> None:
    generator = ToneGenerator(ToneScript.parse(text))
    assert generator.duration_ms == ToneScript.parse(text).duration_ms
    count = 0
    while generator.next_frame() is not None:
        count += 1
        assert count <= frames
    assert count == frames
    assert generator.next_frame() is None


def test_finite_script_ends_quietly() -> None:
    """A tone still on when the script ends fades out inside the script instead of being cut off."""
    x = render("440@-10;.1(*/0/1)", 5)
    assert abs(x[799]) <= 0.01 * peak(-10) and not x[800:].any()


def test_loop_restarts() -> None:
    generator = ToneGenerator(ToneScript.parse("440@-19;.1(.06/.04/1)"), loop=True)
    assert generator.duration_ms is None
    frames = [generator.next_frame() for _ in range(50)]  # 1 s: ten passes
    assert all(f is not None for f in frames)
    x = np.concatenate([f for f in frames if f is not None]).astype(np.float64)
    found = bursts(x, 0.1 * peak(-19))
    assert len(found) == 10
    assert cadence_ms(found, len(x)) == pytest.approx([60, 40] * 9 + [60], abs=EDGE_TOLERANCE_MS)
    assert [s for s, _ in found] == pytest.approx([i * 800 for i in range(10)], abs=EDGE_TOLERANCE_MS * 8)


def test_loop_of_a_steady_tone_is_seamless() -> None:
    x = render("440@-19;.1(*/0/1)", 50, loop=True)
    assert residual_rms(x[RAMP:], RAMP, [440]) < 0.35  # no dip at the nine restarts


def test_forever_script_never_ends() -> None:
    generator = ToneGenerator(ToneScript.parse("440@-19,480@-19;*(2/4/1+2)"))
    assert generator.duration_ms is None
    assert all(generator.next_frame() is not None for _ in range(400))


def test_components_past_full_scale_saturate() -> None:
    x = render("400@3,401@3,402@3;*(*/0/1+2+3)", 10)
    assert x.max() == 32767 and x.min() == -32768


# --- country tones -----------------------------------------------------------------------------------

# (country, kind): frequencies in Hz, cadence in ms (None: continuous), level per component in dBm0.
COUNTRY_TABLE: dict[tuple[str, str], tuple[list[int], list[int] | None, float]] = {
    ("US", "dial"): ([350, 440], None, -19),
    ("US", "ringback"): ([440, 480], [2000, 4000], -19),
    ("US", "busy"): ([480, 620], [500, 500], -24),
    ("US", "congestion"): ([480, 620], [250, 250], -24),
    ("UK", "dial"): ([350, 440], None, -19),
    ("UK", "ringback"): ([400, 450], [400, 200, 400, 2000], -19),
    ("UK", "busy"): ([400], [375, 375], -19),
    ("UK", "congestion"): ([400], [400, 350, 225, 525], -19),
    ("DE", "dial"): ([425], None, -19),
    ("DE", "ringback"): ([425], [1000, 4000], -19),
    ("DE", "busy"): ([425], [480, 480], -19),
    ("DE", "congestion"): ([425], [240, 240], -19),
    ("FR", "dial"): ([440], None, -19),
    ("FR", "ringback"): ([440], [1500, 3500], -19),
    ("FR", "busy"): ([440], [500, 500], -19),
    ("FR", "congestion"): ([440], [250, 250], -19),
    ("RU", "dial"): ([425], None, -19),
    ("RU", "ringback"): ([425], [800, 3200], -19),
    ("RU", "busy"): ([425], [400, 400], -19),
    ("RU", "congestion"): ([425], [200, 200], -19),
    ("NL", "dial"): ([425], None, -19),
    ("NL", "ringback"): ([425], [1000, 4000], -19),
    ("NL", "busy"): ([425], [500, 500], -19),
    ("NL", "congestion"): ([425], [250, 250], -19),
    ("IT", "dial"): ([425], [200, 200, 600, 1000], -19),
    ("IT", "ringback"): ([425], [1000, 4000], -19),
    ("IT", "busy"): ([425], [500, 500], -19),
    ("IT", "congestion"): ([425], [200, 200], -19),
    ("ES", "dial"): ([425], None, -19),
    ("ES", "ringback"): ([425], [1500, 3000], -19),
    ("ES", "busy"): ([425], [200, 200], -19),
    ("ES", "congestion"): ([425], [200, 200, 200, 200, 200, 600], -19),
    ("CN", "dial"): ([450], None, -19),
    ("CN", "ringback"): ([450], [1000, 4000], -19),
    ("CN", "busy"): ([450], [350, 350], -19),
    ("CN", "congestion"): ([450], [700, 700], -19),
}


def test_table_covers_every_country_and_kind() -> None:
    assert {(country, kind) for country in PROGRESS_TONES for kind in PROGRESS_TONES[country]} == set(COUNTRY_TABLE)


@pytest.mark.parametrize(("country", "kind"), sorted(COUNTRY_TABLE))
def test_country_tone_matches_table(country: str, kind: str) -> None:
    frequencies, cadence, level = COUNTRY_TABLE[country, kind]
    script = progress_tone(country, kind)
    # One whole period and the next burst, so every on and off time of the table is measured once.
    length_ms = sum(cadence) + cadence[0] + 100 if cadence else 1000
    generator = ToneGenerator(script)
    assert generator.duration_ms is None  # progress tones sound until the player is stopped
    frames = [generator.next_frame() for _ in range(length_ms // 20)]
    x = np.concatenate([f for f in frames if f is not None]).astype(np.float64)
    found = bursts(x, 0.1 * len(frequencies) * peak(level))
    if cadence is None:
        assert len(found) == 1 and found[0][1] == len(x)
    else:
        measured = cadence_ms(found, len(x))
        assert len(measured) >= len(cadence) + 1
        assert measured == pytest.approx((cadence * 2)[: len(measured)], abs=EDGE_TOLERANCE_MS)
    start, end = max(found, key=lambda b: b[1] - b[0])
    inner = slice(start + 2 * RAMP, end - 2 * RAMP)
    measured = spectrum_peaks(x[inner], len(frequencies))
    assert measured == pytest.approx(frequencies, abs=FREQUENCY_TOLERANCE_HZ)
    for amplitude, _ in fit(x[inner], inner.start, [float(f) for f in frequencies]):
        assert 20 * np.log10(amplitude / ZERO_DBM0_PEAK) == pytest.approx(level, abs=LEVEL_TOLERANCE_DB)


@pytest.mark.parametrize(
    ("country", "kind", "same_as"),
    [
        ("gb", "ringback", ("UK", "ringback")),
        ("GB", "busy", ("UK", "busy")),
        ("usa", "reorder", ("US", "congestion")),
        (" ru ", "Busy", ("RU", "busy")),
        ("de", "ringback", ("DE", "ringback")),
    ],
)
def test_progress_tone_aliases(country: str, kind: str, same_as: tuple[str, str]) -> None:
    assert progress_tone(country, kind) == progress_tone(*same_as)


def test_progress_tone_default_is_ringback() -> None:
    assert progress_tone("US").serialize() == "440@-19,480@-19;*(2/4/1+2)"


def test_unknown_country_and_kind() -> None:
    with pytest.raises(ProgressToneError, match=r"'XX'.*known: .*DE.*GB.*RU.*UK.*US") as caught:
        progress_tone("XX")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError, match=r"'howler'.*ringback, busy, congestion, dial"):
        progress_tone("US", "howler")
