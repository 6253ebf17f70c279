"""voxpush against a box: upload, re-upload without writes, conflicts, status/diff/pull/init, start/logs/calls,
errors, discovery.

Each test runs against a real appliance of its own (HTTPS on 127.0.0.1, a service account made with
`appliance apikey create --service-account`).
"""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import io
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import daemon_helpers
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from voxpush_helpers import service_account

from tools.voxpush.api import Client, KnownHosts, fingerprint, load_credentials
from tools.voxpush.cli import main
from tools.voxpush.project import Project, Rule

REPO = Path(__file__).resolve().parent.parent
VOXPUSH = REPO / ".venv" / "bin" / "voxpush"
FIXTURE = Path(__file__).resolve().parent / "voxpush_fixtures" / "project"
IVR = "ivr.voxgate.voximplant.com"
FORWARD = "forward.voxgate.voximplant.com"

pytestmark = pytest.mark.timeout(120)


@dataclass
class Box:
    host: str
    credentials: Path
    fingerprint: str
    client: Client

    def api(self, cmd: str, **params: Any) -> dict[str, Any]:
        return self.client.call(cmd, **params)

    def writes(self) -> list[str]:
        """The write methods the box's audit log holds, oldest first."""
        found = self.api("GetAuditLog", from_date="2000-01-01 00:00:00", to_date="2100-01-01 00:00:00",
                         count=1000)["result"]
        return [str(e["cmd"]) for e in sorted(found, key=lambda e: int(e["audit_log_id"]))
                if not str(e["cmd"]).startswith("Get")]


def _client(port: int, credentials: Path, fp: str, known: Path) -> Client:
    return Client("127.0.0.1", port, load_credentials(credentials), KnownHosts(known), fp)


@contextlib.contextmanager
def real_box(tmp: Path) -> Iterator[Box]:
    data_dir = tmp / "data"
    data_dir.mkdir()
    credentials = tmp / "vox_ci_credentials.json"
    with daemon_helpers.running_daemon(data_dir) as daemon:
        result = daemon_helpers.run_appliance(
            ["apikey", "create", "--data-dir", str(data_dir), "--service-account", str(credentials)], cwd=tmp)
        assert result.returncode == 0, result.stderr
        der = x509.load_pem_x509_certificate(daemon.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
        port = int(daemon.https_port)
        client = _client(port, credentials, fingerprint(der), tmp / "test_known_hosts")
        yield Box(f"127.0.0.1:{port}", credentials, fingerprint(der), client)
        client.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    with real_box(tmp_path) as found:
        yield found


@dataclass
class Result:
    code: int
    out: str
    err: str


_CWD_LOCK = threading.Lock()


def voxpush(project: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process (fast), in PROJECT, known hosts in the project's folder."""
    out, err = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    with _CWD_LOCK:
        cwd = Path.cwd()
        os.environ.update({"VOXPUSH_KNOWN_HOSTS": str(project / "known_hosts"), **(env or {})})
        os.chdir(project)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved_env)
    return Result(code, out.getvalue(), err.getvalue())


def make_project(tmp: Path, box: Box, name: str = "project") -> Path:
    """The fixture project (two applications, four rules, a TypeScript scenario) pointed at BOX."""
    project = tmp / name
    subprocess.run(["cp", "-r", str(FIXTURE), str(project)], check=True)
    (project / ".env").write_text(f"VOX_CI_CREDENTIALS={box.credentials}\nVOX_CI_ROOT_PATH=voxfiles\n"
                                  f"VOX_CI_HOST={box.host}\n", encoding="utf-8")
    return project


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\nstdout:\n{result.out}\nstderr:\n{result.err}"
    assert "Traceback" not in result.err
    return result


def errors(result: Result) -> list[str]:
    """The error lines (the others on stderr are the trust-on-first-use notes)."""
    return [line for line in result.err.splitlines() if not line.startswith(("The authenticity", "Its cert", "Warn"))]


def script(box: Box, name: str) -> str:
    found = box.api("GetScenarios", scenario_name=name, with_script=True)["result"]
    return str(next(s for s in found if s["scenario_name"] == name)["scenario_script"])


def scenario_id(box: Box, name: str) -> int:
    found = box.api("GetScenarios", scenario_name=name)["result"]
    return int(next(s for s in found if s["scenario_name"] == name)["scenario_id"])


def rules(box: Box, app: str) -> list[tuple[str, str, list[str]]]:
    found = box.api("GetRules", application_name=app, with_scenarios=True)["result"]
    return [(r["rule_name"], r["rule_pattern"], [s["scenario_name"] for s in r["scenarios"]]) for r in found]


def test_upload_then_nothing_to_write(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    first = ok(voxpush(project, "upload", "--application-name", "ivr"))
    assert "[1/3] scenario greeting ... added" in first.out
    assert "[2/3] scenario ivr_menu ... added" in first.out
    assert "permanently added" in first.err  # trust on first use
    ok(voxpush(project, "upload", "--application-name", "forward"))
    assert rules(box, IVR) == [("inbound", r"1\d\d", ["greeting", "ivr_menu"]), ("fallback", ".*", ["greeting"]),
                               ("night", "9.*", ["closed", "greeting"])]
    assert rules(box, FORWARD) == [("forward", r"\+?[1-9]\d{6,14}", ["forward"])]
    ts_built = (project / "voxfiles/applications" / IVR / "scenarios/dist/ivr_menu.voxengine.js").read_text()
    assert script(box, "ivr_menu") == ts_built and "const" in ts_built and ": number" not in ts_built
    meta = json.loads((project / "voxfiles/.voxengine-ci/applications" / IVR /
                       "scenarios/dist/ivr_menu.metadata.config.json").read_text())
    assert meta == {"scenarioId": scenario_id(box, "ivr_menu"), "scenarioName": "ivr_menu",
                    "hash": hashlib.sha256(ts_built.encode()).hexdigest(), "applicationId": meta["applicationId"]}
    rules_meta = json.loads((project / "voxfiles/.voxengine-ci/applications" / IVR /
                             "rules.metadata.config.json").read_text())
    assert [r["ruleName"] for r in rules_meta] == ["inbound", "fallback", "night"]

    writes = box.writes()
    again = ok(voxpush(project, "upload", "--application-name", "ivr"))
    ok(voxpush(project, "upload", "--application-name", FORWARD))
    assert box.writes() == writes, "a re-upload without changes wrote to the box"
    assert "0 scenario(s) uploaded, 3 unchanged, 0 rule change(s)" in again.out
    assert ok(voxpush(project, "status")).out.rstrip().endswith("everything is in sync with the box")

    # Rule changes: a new order, a new pattern, a scenario dropped from a rule.
    rules_file = project / "voxfiles/applications" / IVR / "rules.config.json"
    rules_file.write_text(json.dumps([
        {"ruleName": "night", "rulePattern": "9.*", "scenarios": ["greeting", "closed"]},
        {"ruleName": "inbound", "rulePattern": r"1\d\d\d", "scenarios": ["ivr_menu"]},
        {"ruleName": "fallback", "rulePattern": ".*", "scenarios": ["greeting"]}]))
    ok(voxpush(project, "upload", "--application-name", "ivr"))
    assert rules(box, IVR) == [("night", "9.*", ["greeting", "closed"]), ("inbound", r"1\d\d\d", ["ivr_menu"]),
                               ("fallback", ".*", ["greeting"])]
    assert not set(box.writes()[len(writes):]) & {"AddScenario", "SetScenarioInfo"}


def test_conflict_force_status_diff_pull(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    ok(voxpush(project, "upload", "--application-name", "ivr"))
    greeting = project / "voxfiles/applications" / IVR / "scenarios/src/greeting.voxengine.js"
    remote = script(box, "greeting").replace("greeting done", "greeting done on the box")
    box.api("SetScenarioInfo", scenario_id=scenario_id(box, "greeting"), scenario_script=remote)

    status = ok(voxpush(project, "status", "--application-name", "ivr")).out
    assert "greeting" in status and "changed on the box" in status
    diff = ok(voxpush(project, "diff")).out
    assert '-        Logger.write("greeting done on the box");' in diff
    assert '+        Logger.write("greeting done");' in diff

    greeting.write_text(greeting.read_text().replace("greeting done", "greeting done locally"))
    refused = voxpush(project, "upload", "--application-name", "ivr")
    assert refused.code == 1 and "has been already changed from the platform, operation is aborted" in refused.err
    assert script(box, "greeting") == remote
    assert "changed locally and on the box" in ok(voxpush(project, "status")).out
    pull_refused = voxpush(project, "pull", "--application-name", "ivr")
    assert pull_refused.code == 1 and "local changes would be overwritten" in pull_refused.err

    forced = ok(voxpush(project, "upload", "--application-name", "ivr", "--force"))
    assert "--force: overwriting" in forced.out
    assert "greeting done locally" in script(box, "greeting")

    # Changed on the box only: pull takes it back, and status is clean afterwards.
    remote = script(box, "greeting").replace("greeting done locally", "greeting done, pulled")
    box.api("SetScenarioInfo", scenario_id=scenario_id(box, "greeting"), scenario_script=remote)
    box.api("SetRuleInfo", rule_id=_rule_id(box, IVR, "fallback"), rule_pattern="0.*")
    pulled = ok(voxpush(project, "pull", "--application-name", "ivr"))
    assert "pulled scenario greeting" in pulled.out
    assert greeting.read_text() == remote
    assert Rule("fallback", "0.*", ("greeting",)) in local_rules(project / "voxfiles/applications" / IVR)
    assert ok(voxpush(project, "status", "--application-name", "ivr")).out.rstrip().endswith(
        "everything is in sync with the box")
    writes = box.writes()
    ok(voxpush(project, "upload", "--application-name", "ivr"))
    assert box.writes() == writes


def _rule_id(box: Box, app: str, name: str) -> int:
    found = box.api("GetRules", application_name=app, rule_name=name)["result"]
    return int(next(r for r in found if r["rule_name"] == name)["rule_id"])


def test_init_reproduces_the_pushed_tree(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    ok(voxpush(project, "upload", "--application-name", "ivr"))
    ok(voxpush(project, "upload", "--application-name", "forward"))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".env").write_text((project / ".env").read_text())
    ok(voxpush(fresh, "init"))
    for app in (IVR, FORWARD):
        src, copy = project / "voxfiles/applications" / app, fresh / "voxfiles/applications" / app
        assert json.loads((copy / "application.config.json").read_text()) == {"applicationName": app}
        assert local_rules(copy) == local_rules(src)
        for js in (src / "scenarios/src").glob("*.voxengine.js"):
            assert filecmp.cmp(js, copy / "scenarios/src" / js.name, shallow=False), js.name
    # The TypeScript scenario comes back as the JavaScript the box runs.
    ts_dist = project / "voxfiles/applications" / IVR / "scenarios/dist/ivr_menu.voxengine.js"
    assert (fresh / "voxfiles/applications" / IVR / "scenarios/src/ivr_menu.voxengine.js").read_text() == \
        ts_dist.read_text()
    assert ok(voxpush(fresh, "status")).out.rstrip().endswith("everything is in sync with the box")
    again = voxpush(fresh, "init")
    assert again.code == 1 and "Project has already been initialized" in again.err
    ok(voxpush(fresh, "init", "--force"))


def local_rules(app_dir: Path) -> list[Rule]:
    project = Project(app_dir.parent.parent)
    return project.read_rules(json.loads((app_dir / "application.config.json").read_text())["applicationName"])


def test_shared_layout_and_short_name_expansion(box: Box, tmp_path: Path) -> None:
    """The older layout (voxfiles/scenarios/src), an application not on the box yet, named short."""
    project = tmp_path / "old"
    app = project / "voxfiles/applications/shared.voxgate.voximplant.com"
    app.mkdir(parents=True)
    (app / "application.config.json").write_text(json.dumps({"applicationName": "shared.voxgate.voximplant.com"}))
    (app / "rules.config.toml").write_text('[[rules]]\nruleName = "all"\nrulePattern = ".*"\nscenarios = ["hello"]\n')
    (project / "voxfiles/scenarios/src").mkdir(parents=True)
    (project / "voxfiles/scenarios/src/hello.voxengine.js").write_text('Logger.write("hello");\n')
    (project / ".env").write_text(f"VOX_CI_CREDENTIALS={box.credentials}\nVOX_CI_HOST={box.host}\n")
    ok(voxpush(project, "upload", "--application-name", "shared", "--dry-run"))
    assert (project / "voxfiles/scenarios/dist/hello.voxengine.js").is_file()
    assert not box.api("GetApplications", application_name="shared.voxgate.voximplant.com")["result"]
    ok(voxpush(project, "upload", "--application-name", "shared"))
    assert rules(box, "shared.voxgate.voximplant.com") == [("all", ".*", ["hello"])]
    assert (project / "voxfiles/.voxengine-ci/scenarios/dist/hello.metadata.config.json").is_file()
    missing = voxpush(project, "upload", "--application-name", "nowhere")
    assert missing.code == 1 and 'Application with --application-name "nowhere.voxgate.voximplant.com" does not ' \
        "exist" in missing.err
    no_rule = voxpush(project, "upload", "--application-name", "shared", "--rule-name", "nope")
    assert no_rule.code == 1 and 'Rule with --rule-name "nope" does not exist' in no_rule.err


def test_refused_scenario_names_file_and_line(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    broken = project / "voxfiles/applications" / FORWARD / "scenarios/src/forward.voxengine.js"
    # tsc 4.8 does not look inside regular expressions; the box's JavaScript engine does.
    broken.write_text(broken.read_text() + "const tooFew = /a{2,1}/;\n")
    result = voxpush(project, "upload", "--application-name", "forward")
    assert result.code == 1 and "Traceback" not in result.err
    line = len(broken.read_text().splitlines())
    assert "the box refused scenario forward" in result.err and f"forward.js:{line}:" in result.err
    assert len(errors(result)) == 1


def test_start_logs_calls(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    ok(voxpush(project, "upload", "--application-name", "ivr"))
    started = ok(voxpush(project, "start", "fallback", "--application-name", "ivr", "--custom-data", "hello"))
    session = int(started.out.split()[1])
    assert "media_session_access_url: http" in started.out
    followed = ok(voxpush(project, "logs", str(session), "--follow"))
    assert "hello" in followed.out and "session ended" in followed.out.splitlines()[-1]
    assert "hello" in ok(voxpush(project, "logs", str(session))).out
    table = ok(voxpush(project, "calls", "--count", "5")).out.splitlines()
    assert table[0].split()[:2] == ["SESSION", "START"]
    assert any(line.split()[0] == str(session) and "fallback" in line for line in table[1:])


def test_errors_are_one_line(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    wrong = tmp_path / "wrong.json"
    data = json.loads(box.credentials.read_text())
    other = tmp_path / "other.json"
    service_account(other)
    data["private_key"] = json.loads(other.read_text())["private_key"]
    wrong.write_text(json.dumps(data))
    result = voxpush(project, "status", env={"VOX_CI_CREDENTIALS": str(wrong)})
    assert result.code == 1 and len(errors(result)) == 1 and "refused the key" in errors(result)[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = voxpush(project, "upload", "--application-name", "ivr", "--host", f"127.0.0.1:{closed}")
    assert result.code == 1 and result.err.strip() == \
        f"voxpush: error: cannot reach the box at 127.0.0.1:{closed}: connection refused (is the box running, and " \
        "is this its HTTPS port?)"
    result = voxpush(project, "status", env={"VOX_CI_CREDENTIALS": str(tmp_path / "absent.json")})
    assert result.code == 1 and "absent.json not found" in result.err
    unknown = voxpush(project, "start", "nope", "--application-name", "ivr")
    assert unknown.code == 1 and len(errors(unknown)) == 1 and "StartScenarios" in errors(unknown)[0]
    # The CLI itself, as a process: exit codes and no traceback.
    proc = subprocess.run([str(VOXPUSH), "upload", "--host", f"127.0.0.1:{closed}", "--application-name", "ivr"],
                          cwd=project, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VOXPUSH_KNOWN_HOSTS": str(tmp_path / "kh")})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "cannot reach" in proc.stderr
    proc = subprocess.run([str(VOXPUSH), "upload", "--rule-id", "x"], cwd=project, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2


def test_discover_finds_the_box_announced_on_loopback(tmp_path: Path) -> None:
    """The daemon announces itself over mDNS on 127.0.0.1 only; voxpush finds it with its certificate."""
    with daemon_helpers.running_daemon(tmp_path / "data", extra_args=["--mdns", "127.0.0.1"]) as daemon:
        der = x509.load_pem_x509_certificate(daemon.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
        started = time.monotonic()
        result = ok(voxpush(tmp_path, "discover", "--timeout", "3", "--interface", "127.0.0.1"))
        assert time.monotonic() - started < 10
        assert f"voxgate  127.0.0.1:{daemon.https_port}  {fingerprint(der)}  0.1.0" in result.out.splitlines()


def test_pin_refuses_another_certificate(box: Box, tmp_path: Path) -> None:
    project = make_project(tmp_path, box)
    ok(voxpush(project, "status"))
    known = project / "known_hosts"
    host, port = box.host.split(":")
    known.write_text(f"{host}:{port} SHA256:{'00' * 32}\n")
    result = voxpush(project, "status")
    assert result.code == 1 and "BOX CERTIFICATE HAS CHANGED" in result.err and str(known) in result.err
    assert ok(voxpush(project, "status", "--fingerprint", box.fingerprint.lower())).code == 0
    result = voxpush(project, "status", "--fingerprint", "SHA256:" + "11" * 32)
    assert result.code == 1 and "given with --fingerprint" in result.err

