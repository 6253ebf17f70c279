"""`appliance exec`: the offline harness as users run it, as a subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "scenarios" / "voxfiles" / "scenarios" / "src"


def appliance_exec(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "exec", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_stdout_carries_only_the_script_lines_and_exit_0(tmp_path: Path) -> None:
    script = write(tmp_path, "s.js", """
Logger.write("one");
console.log("two", 2);
VoxEngine.addEventListener(AppEvents.Started, () => setTimeout(() => { Logger.write("after 50 s"); }, 50000));
""")
    began = time.monotonic()
    result = appliance_exec("--custom-data", "cd", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "one\ntwo 2\nafter 50 s\n"
    assert "session ended: Normal termination" in result.stderr
    assert time.monotonic() - began < 20  # 50 s timer and 60 s idle timeout on the virtual clock


def test_example_scenario_runs(tmp_path: Path) -> None:
    result = appliance_exec("--custom-data", "hi", EXAMPLES / "hello.voxengine.js")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello from session 1, custom data: hi\n"


def test_several_files_share_one_session(tmp_path: Path) -> None:
    lib = write(tmp_path, "lib.js", "function greet(n) { return 'hello ' + n; }")
    main = write(tmp_path, "main.js", "Logger.write(greet('world')); VoxEngine.terminate();")
    result = appliance_exec(lib, main)
    assert (result.returncode, result.stdout) == (0, "hello world\n")


def test_system_error_exits_1_with_file_and_line_on_stderr(tmp_path: Path) -> None:
    script = write(tmp_path, "boom.js", "Logger.write('before');\n\nnull.property;\n")
    result = appliance_exec(script)
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert f"{script}:3:" in result.stderr and "TypeError" in result.stderr


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    script = write(tmp_path, "bad.js", "var ok = 1;\nvar = 2;\n")
    result = appliance_exec(script)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{script}:2:" in result.stderr and "SyntaxError" in result.stderr


def test_busy_loop_exits_1(tmp_path: Path) -> None:
    script = write(tmp_path, "spin.js", "VoxEngine.addEventListener(AppEvents.Started, () => { while (true) {} });")
    result = appliance_exec(script)
    assert result.returncode == 1
    assert "1 s of CPU time" in result.stderr


def test_timeout_ends_a_session_that_never_finishes(tmp_path: Path) -> None:
    # An interval does not count as a call: the 60 s idle rule would end this; --timeout comes first.
    script = write(tmp_path, "forever.js", "setInterval(() => {}, 1000);")
    result = appliance_exec("--timeout", "5", script)
    assert result.returncode == 1
    assert "--timeout" in result.stderr


def test_real_time_mode(tmp_path: Path) -> None:
    script = write(tmp_path, "rt.js", "setTimeout(() => { Logger.write('late'); VoxEngine.terminate(); }, 300);")
    began = time.monotonic()
    result = appliance_exec("--real-time", script)
    assert (result.returncode, result.stdout) == (0, "late\n")
    assert time.monotonic() - began >= 0.3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dtmf", "12"], "--dtmf needs --call"),
        (["--call", "100", "--dtmf", "1x"], "keys are 0-9"),
        (["--call", ":555"], "--call needs a destination"),
        (["--peer", "100"], "expected NUMBER=BEHAVIOUR"),
        (["--peer", "100=sometimes"], "'sometimes' is not a behaviour"),
        (["--peer", "100=reject:200"], "'reject:200' is not a behaviour"),
        (["--peer", "100=answer,busy"], "both answers and refuses"),
    ],
)
def test_bad_call_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    script = write(tmp_path, "s.js", "")
    result = appliance_exec(*args, script)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert appliance_exec().returncode == 2
    assert appliance_exec(tmp_path / "missing.js").returncode == 2
    assert appliance_exec("--timeout", "0", write(tmp_path, "s.js", "")).returncode == 2
