"""voxpush's offline parts: settings, both voxfiles layouts, metadata, hashing, the tsc build, JWTs,
certificate pinning against a real local TLS server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from voxpush_helpers import self_signed, service_account

from tools.voxpush.api import (
    Client,
    KnownHosts,
    VoxpushError,
    fingerprint,
    load_credentials,
    make_token,
    normalize_fingerprint,
    parse_host,
)
from tools.voxpush.build import TSCONFIG, BuildError, build
from tools.voxpush.project import Project, Rule, Source, load_settings, sha256
from tools.voxpush.upload import local_hashes

pytestmark = pytest.mark.timeout(60)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_settings_from_env_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VOX_CI_CREDENTIALS", "VOX_CI_ROOT_PATH", "VOX_CI_HOST"):
        monkeypatch.delenv(name, raising=False)
    defaults = load_settings(tmp_path)
    assert (defaults.credentials, defaults.root, defaults.host, defaults.env_file) == (
        tmp_path / "vox_ci_credentials.json", tmp_path / "voxfiles", None, None)
    write(tmp_path / ".env", "# comment\nVOX_CI_CREDENTIALS=keys/sa.json\nVOX_CI_ROOT_PATH='files'\n"
                             "export VOX_CI_HOST=gw.local:9443\n")
    settings = load_settings(tmp_path)
    assert (settings.credentials, settings.root, settings.host) == (
        tmp_path / "keys/sa.json", tmp_path / "files", "gw.local:9443")
    monkeypatch.setenv("VOX_CI_HOST", "other")  # as with dotenv, the environment wins
    assert load_settings(tmp_path).host == "other"
    (tmp_path / ".env").write_bytes(b"VOX_CI_ROOT_PATH=\xff\xfe\n")
    with pytest.raises(VoxpushError, match="cannot read"):
        load_settings(tmp_path)


def test_both_layouts(tmp_path: Path) -> None:
    root = tmp_path / "voxfiles"
    app = "app.acc.voximplant.com"
    write(root / "applications" / app / "application.config.json", json.dumps({"applicationName": app}))
    shared = write(root / "scenarios/src/shared.voxengine.js", "1;\n")
    write(root / "applications" / app / "scenarios/src/own.voxengine.ts", "1;\n")
    write(root / "applications" / app / "scenarios/src/both.voxengine.js", "1;\n")
    write(root / "scenarios/src/both.voxengine.js", "2;\n")
    project = Project(root)
    assert project.app_dirs() == {app: root / "applications" / app}
    assert project.local_full_name("app") == app and project.local_full_name("ap") is None
    assert project.source(app, "shared") == Source("shared", shared, root / "scenarios")
    found = project.source(app, "own")
    assert found.is_typescript and found.dist == root / "applications" / app / "scenarios/dist/own.voxengine.js"
    assert project.source(app, "both").folder == root / "applications" / app / "scenarios"  # its own first
    with pytest.raises(VoxpushError, match='The "none" scenario does not exist'):
        project.source(app, "none")
    assert not project.per_application_layout()  # scenarios/src has files: the older layout stays
    assert project.scenario_meta_path(project.source(app, "shared")) == \
        root / ".voxengine-ci/scenarios/dist/shared.metadata.config.json"
    assert project.scenario_meta_path(found) == \
        root / ".voxengine-ci/applications" / app / "scenarios/dist/own.metadata.config.json"
    assert Project(tmp_path / "empty").per_application_layout()


@pytest.mark.parametrize("file", ["rules.config.json", "rules.config.yml", "rules.config.yaml", "rules.config.toml"])
def test_rules_files_round_trip(tmp_path: Path, file: str) -> None:
    project = Project(tmp_path)
    write(tmp_path / "applications/a/application.config.json", '{"applicationName": "a"}')
    rules = [Rule("in", r"1\d+", ("x", "y")), Rule("all", ".*", ())]
    write(tmp_path / "applications/a" / file, "[]" if not file.endswith("toml") else "")
    project.write_rules("a", rules)
    assert project.rules_file("a") == tmp_path / "applications/a" / file
    assert project.read_rules("a") == rules


def test_rule_without_pattern_matches_everything(tmp_path: Path) -> None:
    project = Project(tmp_path)
    write(tmp_path / "applications/a/application.config.json", '{"applicationName": "a"}')
    write(tmp_path / "applications/a/rules.config.json", '[{"ruleName": "r", "scenarios": ["s"]}]')
    assert project.read_rules("a") == [Rule("r", ".*", ("s",))]
    write(tmp_path / "applications/a/rules.config.yml", "[]")
    with pytest.raises(VoxpushError, match="several rules files"):
        project.read_rules("a")


def test_metadata_shapes(tmp_path: Path) -> None:
    project = Project(tmp_path)
    app = "a.acc.voximplant.com"
    write(tmp_path / "applications" / app / "application.config.json", json.dumps({"applicationName": app}))
    source = Source("s", write(tmp_path / "applications" / app / "scenarios/src/s.voxengine.js", ""),
                    tmp_path / "applications" / app / "scenarios")
    project.write_scenario_meta(source, 7, "ab", 3)
    path = tmp_path / ".voxengine-ci/applications" / app / "scenarios/dist/s.metadata.config.json"
    assert path.read_text() == '{"scenarioId":7,"scenarioName":"s","hash":"ab","applicationId":3}'
    assert project.read_scenario_meta(source) == {"scenarioId": 7, "scenarioName": "s", "hash": "ab",
                                                  "applicationId": 3}
    project.write_rules_meta(app, [{"rule_id": 5, "rule_name": "r", "rule_pattern": ".*",
                                    "scenarios": [{"scenario_id": 7, "scenario_name": "s"}]}])
    assert (tmp_path / ".voxengine-ci/applications" / app / "rules.metadata.config.json").read_text() == \
        '[{"ruleName":"r","ruleId":5,"scenarios":[{"scenarioName":"s","scenarioId":7}],"rulePattern":".*"}]'
    project.write_app_meta(app, 3, [(7, "s")])
    assert json.loads((tmp_path / ".voxengine-ci/applications" / app / "application.metadata.config.json")
                      .read_text()) == {"applicationId": 3, "applicationName": app,
                                        "scenarios": [{"scenarioId": 7, "scenarioName": "s"}]}
    assert project.initialized()


def test_hashes() -> None:
    assert sha256("é\n") == hashlib.sha256("é\n".encode()).hexdigest()


def test_tsc_build_and_type_error(tmp_path: Path) -> None:
    root = tmp_path / "voxfiles"
    project = Project(root)
    ts = Source("t", write(root / "scenarios/src/t.voxengine.ts",
                           "const n: number = 5;\nLogger.write(`n=${n}`);\n"), root / "scenarios")
    js_text = "// kept\nVoxEngine.addEventListener(AppEvents.Started, () => {\n    Logger.write(\"x\");\n});\n"
    js = Source("j", write(root / "scenarios/src/j.voxengine.js", js_text), root / "scenarios")
    texts = build(project, [ts, js])
    assert texts["t"] == "const n = 5;\nLogger.write(`n=${n}`);\n" == ts.dist.read_text()
    assert texts["j"] == js_text
    assert not (root / TSCONFIG).exists()
    assert local_hashes(js, texts["j"]) == {sha256(js_text)}
    write(root / "scenarios/src/j.voxengine.js", "Logger.write( 1 )\n")
    assert local_hashes(js, build(project, [js])["j"]) == {sha256("Logger.write(1);\n"), sha256("Logger.write( 1 )\n")}

    write(ts.path, "const ok = 1;\nconst n: number = \"five\";\n")
    with pytest.raises(BuildError) as failed:
        build(project, [ts], tmp_path / "out")
    assert "Compilation of the [ t ] scenarios has failed" in str(failed.value)
    assert "voxfiles/scenarios/src/t.voxengine.ts:2:7: error TS2322" in str(failed.value)
    assert ts.dist.read_text() == "const n = 5;\nLogger.write(`n=${n}`);\n"  # noEmitOnError: the old build stays


def test_jwt_is_what_the_box_checks(tmp_path: Path) -> None:
    key = service_account(tmp_path / "sa.json", key_id="kid-1")
    creds = load_credentials(tmp_path / "sa.json")
    now = time.time()
    token = make_token(creds, now)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "kid-1", "typ": "JWT"}
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["iss"] == "1" and claims["iat"] == int(now) - 5 and claims["exp"] == int(now) + 60
    with pytest.raises(VoxpushError, match="not found"):
        load_credentials(tmp_path / "missing.json")
    write(tmp_path / "bad.json", '{"account_id": 1}')
    with pytest.raises(VoxpushError, match="not a service-account key file"):
        load_credentials(tmp_path / "bad.json")


def test_parse_host() -> None:
    assert parse_host("gw.local") == ("gw.local", 8443)
    assert parse_host("10.0.0.2:9443") == ("10.0.0.2", 9443)
    assert parse_host("[fe80::1]:443") == ("fe80::1", 443)
    assert parse_host("https://gw.local/platform_api") == ("gw.local", 8443)
    with pytest.raises(VoxpushError, match="only https"):
        parse_host("http://gw.local")
    for bad in ("https://[bad", "[bad", "gw.local:99999", ""):
        with pytest.raises(VoxpushError, match="invalid host"):
            parse_host(bad)
    assert normalize_fingerprint("sha256:" + "ab:" * 31 + "ab") == "SHA256:" + "AB" * 32
    with pytest.raises(VoxpushError, match="invalid fingerprint"):
        normalize_fingerprint("SHA256:abc")


class TlsServer:
    """A TLS server answering every request with a fixed JSON API answer, on a given port."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        cert, key, self.der = self_signed(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    body = b'{"result": {"account_id": 1, "account_name": "voxgate"}}'
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept() up, and frees the port for the next server
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    server = TlsServer(tmp_path / "one")
    yield server
    server.close()


def test_trust_on_first_use_then_refuse_a_changed_certificate(tmp_path: Path, tls_server: TlsServer,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    service_account(tmp_path / "sa.json")
    creds = load_credentials(tmp_path / "sa.json")
    known = KnownHosts(tmp_path / "cfg/known_hosts")
    first = Client("127.0.0.1", tls_server.port, creds, known)
    assert first.call("GetAccountInfo")["result"]["account_name"] == "voxgate"
    first.close()
    seen = fingerprint(tls_server.der)
    assert f"Its certificate's fingerprint is {seen}" in capsys.readouterr().err
    assert known.path.read_text() == f"127.0.0.1:{tls_server.port} {seen}\n"
    Client("127.0.0.1", tls_server.port, creds, known).call("GetAccountInfo")  # known now: silent
    assert capsys.readouterr().err == ""

    port = tls_server.port
    tls_server.close()
    other = TlsServer(tmp_path / "two", port)  # same address, another certificate
    try:
        with pytest.raises(VoxpushError) as refused:
            Client("127.0.0.1", port, creds, known).call("GetAccountInfo")
        text = str(refused.value)
        assert "BOX CERTIFICATE HAS CHANGED" in text and fingerprint(other.der) in text
        assert f"sed -i '/^127\\.0\\.0\\.1:{port} /d' {known.path}" in text
        # An explicit pin needs no known-hosts entry; a wrong one is refused.
        Client("127.0.0.1", port, creds, KnownHosts(tmp_path / "fresh"), fingerprint(other.der).lower()).call(
            "GetAccountInfo")
        assert (tmp_path / "fresh").read_text() == f"127.0.0.1:{port} {fingerprint(other.der)}\n"
        with pytest.raises(VoxpushError, match="given with --fingerprint"):
            Client("127.0.0.1", port, creds, KnownHosts(tmp_path / "x"), "SHA256:" + "0" * 64).call("GetAccountInfo")
    finally:
        other.close()
