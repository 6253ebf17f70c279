"""VoxEngine compatibility suite: public-style scenarios run through `appliance exec`.

Each folder under tests/compat/ holds one scenario: its `*.js` files (run in name order, in one
global scope), `args` (extra harness arguments, one per line), `expected.txt` (the exact standard
output the VoxEngine reference calls for) and, optionally, `exit` (the expected exit status when it
is not 0). All scenarios run once, two at a time, in a module-scoped fixture; each then gets its own
test result.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPAT = ROOT / "tests" / "compat"
TIMEOUT = 60.0  # seconds of wall time per scenario (the harness runs on a virtual clock)
WORKERS = 2


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: timed out
    stdout: str
    stderr: str
    seconds: float


def _folders() -> list[Path]:
    return sorted(p for p in COMPAT.iterdir() if p.is_dir() and any(p.glob("*.js")))


def _arguments(folder: Path) -> list[str]:
    args = folder / "args"
    if not args.exists():
        return []
    return [line for line in args.read_text(encoding="utf-8").splitlines() if line.strip()]


def _run(folder: Path) -> Outcome:
    scripts = [str(p) for p in sorted(folder.glob("*.js"))]
    command = [sys.executable, "-m", "appliance", "exec", *scripts, *_arguments(folder)]
    began = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        def text(data: str | bytes | None) -> str:
            return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
        return Outcome(None, text(exc.stdout), text(exc.stderr), time.monotonic() - began)
    return Outcome(done.returncode, done.stdout, done.stderr, time.monotonic() - began)


FOLDERS = _folders()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip((f.name for f in FOLDERS), pool.map(_run, FOLDERS), strict=True))


def test_suite_is_large_enough() -> None:
    assert len(FOLDERS) >= 45, f"only {len(FOLDERS)} scenarios in {COMPAT}"
    for folder in FOLDERS:
        assert (folder / "expected.txt").exists(), f"{folder.name}: no expected.txt"


# The first scenario test also runs the whole suite (the fixture): ~1 minute, several on a loaded machine.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_scenario(folder: Path, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[folder.name]
    expected = (folder / "expected.txt").read_text(encoding="utf-8")
    exit_file = folder / "exit"
    expected_exit = int(exit_file.read_text(encoding="utf-8").strip()) if exit_file.exists() else 0
    problems: list[str] = []
    if outcome.returncode is None:
        problems.append(f"timed out after {TIMEOUT:.0f} s")
    elif outcome.returncode != expected_exit:
        problems.append(f"exit status {outcome.returncode}, expected {expected_exit}")
    if outcome.stdout != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), outcome.stdout.splitlines(keepends=True),
                                    "expected.txt", "stdout")
        problems.append("stdout differs from expected.txt:\n" + "".join(diff))
    if problems:
        stderr_tail = "\n".join(outcome.stderr.splitlines()[-25:])
        args = " ".join(_arguments(folder))
        pytest.fail(f"{folder.name} ({args or 'no arguments'}, {outcome.seconds:.1f} s):\n"
                    + "\n".join(problems) + f"\n--- stderr (last lines) ---\n{stderr_tail}", pytrace=False)
