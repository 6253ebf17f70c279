"""Building scenarios as voxengine-ci does: a temporary tsconfig, tsc (ES2020, allowJs, noEmitOnError).

voxengine-ci writes `tsconfig.voxengine.temp.json` in the voxfiles root listing the VoxEngine typings
(`../typings/voxengine.d.ts` or the one in node_modules/@voximplant/voxengine-ci) and the scenarios of the
rule(s) being pushed, runs `npx tsc -p` on it and uploads the text tsc wrote to scenarios/dist: for .js
sources too, so what is uploaded (and hashed) is always tsc's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from tools.voxpush.api import VoxpushError
from tools.voxpush.project import Project, Source

TSCONFIG = "tsconfig.voxengine.temp.json"
TSC_TIMEOUT = 300.0

# Used only when the project has no VoxEngine typings at all, so that a plain-JS-style TypeScript
# scenario still type-checks: the globals of the VoxEngine runtime, untyped.
FALLBACK_GLOBALS = (
    "VoxEngine", "AppEvents", "CallEvents", "CallListEvents", "ConferenceEvents", "PlayerEvents", "RecorderEvents",
    "ASREvents", "ASRLanguage", "ASRProfileList", "ASRModelList", "Modules", "Logger", "Net", "ApplicationStorage",
    "VoiceList", "WebSocketEvents", "WebSocket", "PhoneNumber", "IVR", "IVRState", "require",
    "setTimeout", "clearTimeout", "setInterval", "clearInterval",
)


class BuildError(VoxpushError):
    pass


def find_tsc(project: Project) -> str:
    """voxengine-ci runs `npx tsc` in the project: its node_modules first, then VOXPUSH_TSC, then PATH."""
    local = project.root.parent / "node_modules" / ".bin" / "tsc"
    if local.is_file():
        return str(local)
    found = os.environ.get("VOXPUSH_TSC") or shutil.which("tsc")
    if not found:
        raise BuildError("tsc (TypeScript) is not installed: `npm i typescript` in the project, "
                         "or install it system-wide")
    return found


def typings(project: Project) -> list[Path]:
    base = project.root.parent
    return [p for p in (base / "typings" / "voxengine.d.ts",
                        base / "node_modules" / "@voximplant" / "voxengine-ci" / "typings" / "voxengine.d.ts")
            if p.is_file()]


_TSC_LINE = re.compile(r"^(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\): (?P<msg>.*)$")


def build(project: Project, sources: list[Source], out_dir: Path | None = None) -> dict[str, str]:
    """Compile SOURCES; the built text of each, by scenario name.

    Every scenarios/ folder is compiled on its own (its src/ is then the root tsc mirrors into dist/).
    With OUT_DIR the output goes there (status and diff leave dist/ alone), else to each folder's dist/.
    """
    texts: dict[str, str] = {}
    by_folder: dict[Path, list[Source]] = {}
    for source in sources:
        by_folder.setdefault(source.folder, []).append(source)
    tsc = find_tsc(project)
    with tempfile.TemporaryDirectory(prefix="voxpush-") as tmp:
        extra = typings(project)
        if not extra:
            fallback = Path(tmp) / "voxengine-globals.d.ts"
            fallback.write_text("".join(f"declare var {name}: any;\n" for name in FALLBACK_GLOBALS), encoding="utf-8")
            extra = [fallback]
        for index, (folder, group) in enumerate(by_folder.items()):
            dist = out_dir / str(index) if out_dir is not None else folder / "dist"
            _compile(project, tsc, group, extra, folder / "src", dist)
            for source in group:
                path = dist / f"{source.name}.voxengine.js"
                try:
                    texts[source.name] = path.read_text(encoding="utf-8")
                except FileNotFoundError:
                    raise BuildError(f"Scenario with the {source.name} 'scenarioName' dist does not exist "
                                     f"({project.rel(path)})") from None
    return texts


def _compile(project: Project, tsc: str, group: list[Source], extra: list[Path], src: Path, dist: Path) -> None:
    config = {
        "compilerOptions": {"allowJs": True, "target": "ES2020", "lib": ["ES2020"], "skipLibCheck": True,
                            "noEmitOnError": True, "outDir": str(dist.resolve()), "rootDir": str(src.resolve())},
        "include": [str(p.resolve()) for p in extra] + [str(s.path.resolve()) for s in group],
        "exclude": ["node_modules", "**/*.spec.ts"],
    }
    config_path = project.root / TSCONFIG
    config_path.write_text(json.dumps(config), encoding="utf-8")
    try:
        result = subprocess.run([tsc, "-p", str(config_path)], cwd=project.root.parent, capture_output=True,
                                text=True, timeout=TSC_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BuildError(f"tsc did not finish within {TSC_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise BuildError(f"cannot run {tsc}: {exc}") from None
    finally:
        config_path.unlink(missing_ok=True)
    if result.returncode != 0:
        names = ",".join(s.name for s in group)
        lines = [_file_line(line) for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise BuildError(f"Compilation of the [ {names} ] scenarios has failed:\n" + "\n".join(lines))


def _file_line(line: str) -> str:
    """tsc's `file(12,5): error TS2322: ...` -> `file:12:5: error TS2322: ...`, the usual file:line form."""
    match = _TSC_LINE.match(line)
    return f"{match['file']}:{match['line']}:{match['col']}: {match['msg']}" if match else line
