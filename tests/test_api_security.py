"""Security of the management API and of the box's file URLs, against the real daemon.

- every way of calling /platform_api without valid credentials is refused (401, code 100) before any
  method runs, service-account JWTs included (unknown key or kid, wrong iss, expired, too long-lived,
  issued in the future, alg=none, HS256 signed with the public key);
- the rate limits (per key, per source, failed authentications per source) answer 429 with Retry-After
  and recover;
- oversized bodies and scenarios are refused without harming the daemon;
- recording and session-log URLs serve their own files only, whatever the path says;
- a key's audit trail lists exactly its changes, done or refused, with secrets redacted.

The main daemon allows many failed authentications (these tests fail on purpose); each rate-limit test
runs a daemon of its own with small limits. Raw requests go through a socket so that nothing
normalises the path on the way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from daemon_helpers import (
    HOST,
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    db_rows,
    read_text,
    run_appliance,
    running_daemon,
)

ERR_AUTH, ERR_PARAMETER, ERR_SCRIPT, ERR_TOO_LARGE, ERR_RATE = 100, 101, 105, 106, 429
MAX_BODY_BYTES = 4 * 1024 * 1024  # appliance/web/platform.py
SCENARIO_CHARS = 256 * 1024
TOKEN_LIFETIME_MAX = 3600
CLOCK_SKEW = 120
ACCOUNT_ID = "1"
GENEROUS = {"rate_per_key": 1000.0, "burst_per_key": 1000.0, "rate_per_source": 1000.0, "burst_per_source": 1000.0,
            "auth_failures_per_minute": 10000.0}

RECORDER_SCENARIO = """\
// Records a second of tone with a Recorder, logs where the file is served, ends.
VoxEngine.addEventListener(AppEvents.Started, (e) => {
  const recorder = VoxEngine.createRecorder();
  const tone = VoxEngine.createToneScriptPlayer("440@-10;*(*/0/1)");
  tone.sendMediaTo(recorder);
  recorder.addEventListener(RecorderEvents.Started, (ev) => {
    Logger.write("record url " + ev.url);
    setTimeout(() => recorder.stop(), 600);
  });
  recorder.addEventListener(RecorderEvents.Stopped, () => VoxEngine.terminate());
  recorder.addEventListener(RecorderEvents.Error, (ev) => {
    Logger.write("record error " + ev.error);
    VoxEngine.terminate();
  });
});
"""

MARKER_SCENARIO = """\
VoxEngine.addEventListener(AppEvents.Started, (e) => {
  Logger.write(`marker ${VoxEngine.customData()} in session ${e.sessionId}`);
  VoxEngine.terminate();
});
"""


# Plumbing


@dataclass
class Answer:
    status: int
    text: str
    content_type: str
    retry_after: str | None

    def json(self) -> Any:
        return json.loads(self.text)

    def error(self) -> tuple[int, str]:
        """(code, msg) of an {"error": {...}} answer."""
        body = self.json()
        assert isinstance(body, dict) and set(body) == {"error"}, body
        error = body["error"]
        assert isinstance(error, dict) and isinstance(error.get("code"), int) and error.get("msg"), body
        return int(error["code"]), str(error["msg"])


async def call(client: aiohttp.ClientSession, daemon: Daemon, method: str, params: Mapping[str, str] | None = None,
               *, key: str | None = None, bearer: str | None = None, data: Any = None,
               headers: Mapping[str, str] | None = None) -> Answer:
    """POST /platform_api/<method> with form parameters (plus account_id and api_key when `key` is given)."""
    form = dict(params or {})
    if key is not None:
        form.update(account_id=ACCOUNT_ID, api_key=key)
    headers = dict(headers or {})
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    async with client.post(f"{daemon.api_url}/{method}", data=form if data is None else data,
                           headers=headers) as resp:
        return Answer(resp.status, await resp.text(), resp.content_type, resp.headers.get("Retry-After"))


async def ok(client: aiohttp.ClientSession, daemon: Daemon, method: str, params: Mapping[str, str] | None = None,
             *, key: str) -> dict[str, Any]:
    answer = await call(client, daemon, method, params, key=key)
    assert answer.status == 200, (method, answer.status, answer.text)
    body = answer.json()
    assert isinstance(body, dict) and "error" not in body, body
    return body


@contextlib.asynccontextmanager
async def source_client(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose connections come from another loopback address (still to 127.0.0.1)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        yield client


async def raw_get(port: int, target: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client normalises it); (status, whole answer)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(b"GET " + target.encode("latin-1") + b" HTTP/1.1\r\nHost: " + f"{HOST}:{port}".encode()
                     + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    status_line = data.split(b"\r\n", 1)[0].split()
    assert len(status_line) >= 2 and status_line[0].startswith(b"HTTP/1."), data[:200]
    return int(status_line[1]), data


def utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config_file(folder: Path, limits: Mapping[str, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "voxgate.toml"
    path.write_text("[api]\n" + "".join(f"{name} = {float(value)!r}\n" for name, value in limits.items()))
    return path


@contextlib.contextmanager
def limited_daemon(root: Path, **limits: float) -> Iterator[Daemon]:
    config = config_file(root, {**GENEROUS, **limits})
    with running_daemon(root / "data", extra_args=["--config", str(config)]) as daemon:
        yield daemon


def created_key_id(stdout: str) -> str:
    match = re.search(r"Created API key (\S+) in", stdout)
    assert match, stdout
    return match.group(1)


# Fixtures


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("security")
    tree = root / "voxfiles"
    (tree / "applications" / "secapp").mkdir(parents=True)
    (tree / "scenarios" / "src").mkdir(parents=True)
    (tree / "applications" / "secapp" / "application.config.json").write_text('{"applicationName": "secapp"}')
    (tree / "applications" / "secapp" / "rules.config.json").write_text(json.dumps([
        {"ruleName": "record", "rulePattern": "record", "scenarios": ["recorder"]},
        {"ruleName": "marker", "rulePattern": ".*", "scenarios": ["marker"]},
    ]))
    (tree / "scenarios" / "src" / "recorder.voxengine.js").write_text(RECORDER_SCENARIO)
    (tree / "scenarios" / "src" / "marker.voxengine.js").write_text(MARKER_SCENARIO)
    config = config_file(root, GENEROUS)  # these tests fail authentication on purpose, many times
    with running_daemon(root / "data", voxfiles=tree, extra_args=["--config", str(config)]) as d:
        # Files next to the recordings and logs that no URL may ever serve.
        (d.data_dir / "leak.mp3").write_bytes(b"LEAKED-OUTSIDE-RECORDINGS")
        (d.data_dir / "leak.wav").write_bytes(b"LEAKED-OUTSIDE-RECORDINGS")
        yield d
        assert d.proc.poll() is None, f"the daemon died during the tests:\n{d.stderr_text()[-3000:]}"


@pytest.fixture(scope="module")
def key(daemon: Daemon) -> str:
    return create_api_key(daemon.data_dir)


@dataclass(frozen=True)
class ServiceAccount:
    key_id: str
    private_pem: str

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        loaded = serialization.load_pem_private_key(self.private_pem.encode("ascii"), None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        return loaded

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def service_account(daemon: Daemon) -> ServiceAccount:
    target = daemon.data_dir.parent / "service-account.json"
    result = run_appliance(["apikey", "create", "--data-dir", str(daemon.data_dir), "--service-account", str(target)],
                           cwd=daemon.data_dir.parent)
    assert result.returncode == 0, result.stderr
    credentials = json.loads(target.read_text())
    assert str(credentials["account_id"]) == ACCOUNT_ID
    return ServiceAccount(str(credentials["key_id"]), str(credentials["private_key"]))


# Tokens, made by hand where a library would refuse to make them


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def rs256(private_key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda data: private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def official_client_token(account: ServiceAccount, now: int | None = None) -> str:
    """A token as Voximplant's Python client signs it (voximplant.apiclient: iat=now-5, exp=now+24)."""
    ts = int(time.time()) if now is None else now
    return jwt.encode({"iss": ACCOUNT_ID, "iat": ts - 5, "exp": ts + 24}, account.private_pem, algorithm="RS256",
                      headers={"kid": account.key_id})


_OTHER_KEY: list[rsa.RSAPrivateKey] = []


def other_rsa_key() -> rsa.RSAPrivateKey:
    if not _OTHER_KEY:
        _OTHER_KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _OTHER_KEY[0]


def bad_token(kind: str, account: ServiceAccount) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": account.key_id}
    claims: dict[str, Any] = {"iss": ACCOUNT_ID, "iat": now - 5, "exp": now + 24}
    sign = rs256(account.private_key)
    if kind == "unknown-signing-key":
        sign = rs256(other_rsa_key())
    elif kind == "unknown-kid":
        header["kid"] = str(uuid.uuid4())
    elif kind == "no-kid":
        del header["kid"]
    elif kind == "wrong-iss":
        claims["iss"] = "2"
    elif kind == "no-iss":
        del claims["iss"]
    elif kind == "no-exp":
        del claims["exp"]
    elif kind == "expired":  # beyond the tolerated clock skew
        claims.update(iat=now - 2 * CLOCK_SKEW - 60, exp=now - CLOCK_SKEW - 60)
    elif kind == "lifetime-over-an-hour":
        claims.update(iat=now - 5, exp=now - 5 + TOKEN_LIFETIME_MAX + 1)
    elif kind == "issued-in-the-future":
        claims.update(iat=now + 3 * CLOCK_SKEW, exp=now + 3 * CLOCK_SKEW + 30)
    elif kind == "alg-none":  # no signature at all
        header["alg"] = "none"
        sign = lambda _: b""  # noqa: E731
    elif kind == "alg-none-signed":  # the real signature, but the header says it needs none
        header["alg"] = "none"
    elif kind == "hs256-public-key-as-secret":  # algorithm confusion
        header["alg"] = "HS256"
        public = account.public_pem
        sign = lambda data: hmac.new(public, data, hashlib.sha256).digest()  # noqa: E731
    elif kind == "rs512":
        header["alg"] = "RS512"
        key = account.private_key
        sign = lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA512())  # noqa: E731
    elif kind == "tampered-claims":  # a valid token whose claims were changed after signing
        valid = compact(header, claims, sign)
        head, _, signature = valid.split(".")
        claims["exp"] = now + 3000
        return f"{head}.{b64url(json.dumps(claims).encode())}.{signature}"
    elif kind == "bad-signature":
        valid = compact(header, claims, sign)
        return valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    else:
        raise AssertionError(f"unknown bad token {kind}")
    return compact(header, claims, sign)


# Authentication

# (id, form parameters or a Bearer value; "KEY" is the valid secret key, "SA_KEY_ID" the service account's id)
BAD_CREDENTIALS: list[tuple[str, dict[str, str] | None, str | None]] = [
    ("no-credentials", {}, None),
    ("account-id-without-api-key", {"account_id": ACCOUNT_ID}, None),
    ("api-key-without-account-id", {"api_key": "KEY"}, None),
    ("wrong-account-id", {"account_id": "2", "api_key": "KEY"}, None),
    ("account-id-zero-padded", {"account_id": "01", "api_key": "KEY"}, None),
    ("wrong-api-key", {"account_id": ACCOUNT_ID, "api_key": "wrong-" + secrets.token_urlsafe(32)}, None),
    ("empty-api-key", {"account_id": ACCOUNT_ID, "api_key": ""}, None),
    ("service-account-id-as-api-key", {"account_id": ACCOUNT_ID, "api_key": "SA_KEY_ID"}, None),
    ("bearer-garbage", None, "garbage-" + secrets.token_hex(8)),
    ("bearer-empty", None, ""),
    ("bearer-three-dotted-parts", None, "not.a.jwt"),
    ("bearer-service-account-id", None, "SA_KEY_ID"),
]
BAD_TOKENS = ["unknown-signing-key", "unknown-kid", "no-kid", "wrong-iss", "no-iss", "no-exp", "expired",
              "lifetime-over-an-hour", "issued-in-the-future", "alg-none", "alg-none-signed",
              "hs256-public-key-as-secret", "rs512", "tampered-claims", "bad-signature"]


async def application_names(client: aiohttp.ClientSession, daemon: Daemon, key: str) -> set[str]:
    body = await ok(client, daemon, "GetApplications", {"count": "1000"}, key=key)
    return {str(a["application_name"]) for a in body["result"]}


async def audited_application_names(client: aiohttp.ClientSession, daemon: Daemon, key: str) -> set[str]:
    body = await ok(client, daemon, "GetAuditLog", {
        "from_date": utc(time.time() - 86400), "to_date": utc(time.time() + 86400), "filtered_cmd": "AddApplication",
        "count": "1000"}, key=key)
    return {str(e["parameters"].get("application_name")) for e in body["result"]}


async def assert_refused_and_nothing_done(daemon: Daemon, key: str, params: dict[str, str] | None,
                                         bearer: str | None, case: str) -> str:
    """AddApplication with these credentials: 401 code 100, no application, no audit entry; the message."""
    name = unique(f"noauth-{case}")
    async with client_session() as client:
        answer = await call(client, daemon, "AddApplication", {**(params or {}), "application_name": name},
                            bearer=bearer)
        assert answer.status == 401, (case, answer.status, answer.text)
        assert answer.content_type == "application/json", answer.text
        code, msg = answer.error()
        assert code == ERR_AUTH, answer.text
        assert name not in await application_names(client, daemon, key), f"{case}: the method ran"
        assert name not in await audited_application_names(client, daemon, key), f"{case}: the method was audited"
    return msg


@pytest.mark.parametrize(("params", "bearer"), [(p, b) for _, p, b in BAD_CREDENTIALS],
                         ids=[i for i, _, _ in BAD_CREDENTIALS])
async def test_without_valid_credentials_401_and_no_method_runs(
    daemon: Daemon, key: str, service_account: ServiceAccount, params: dict[str, str] | None, bearer: str | None,
    request: pytest.FixtureRequest,
) -> None:
    def fill(value: str) -> str:
        return {"KEY": key, "SA_KEY_ID": service_account.key_id}.get(value, value)

    form = {k: fill(v) for k, v in params.items()} if params is not None else None
    msg = await assert_refused_and_nothing_done(daemon, key, form, None if bearer is None else fill(bearer),
                                                request.node.callspec.id)
    assert key not in msg and service_account.key_id not in msg


@pytest.mark.parametrize("kind", BAD_TOKENS)
async def test_bad_service_account_tokens_401_and_no_method_runs(
    daemon: Daemon, key: str, service_account: ServiceAccount, kind: str
) -> None:
    msg = await assert_refused_and_nothing_done(daemon, key, None, bad_token(kind, service_account), kind)
    if kind == "expired":
        assert "expired" in msg.lower(), msg


async def test_official_client_style_token_accepted(daemon: Daemon, key: str, service_account: ServiceAccount) -> None:
    name = unique("jwt-ok")
    async with client_session() as client:
        info = await call(client, daemon, "GetAccountInfo", bearer=official_client_token(service_account))
        assert info.status == 200, info.text
        assert info.json()["result"]["key_id"] == service_account.key_id
        added = await call(client, daemon, "AddApplication", {"application_name": name},
                           bearer=official_client_token(service_account))
        assert added.status == 200, added.text
        assert added.json()["result"] == 1
        assert name in await application_names(client, daemon, key)
        # Within the tolerated skew: a client clock a minute behind (token expired 35 s ago by the box's clock).
        late = official_client_token(service_account, int(time.time()) - 60)
        assert (await call(client, daemon, "GetAccountInfo", bearer=late)).status == 200


async def test_token_with_nan_iat_refused(daemon: Daemon, key: str, service_account: ServiceAccount) -> None:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": service_account.key_id}
    # json.dumps writes NaN, and PyJWT's json.loads reads it back as float('nan').
    token = compact(header, {"iss": ACCOUNT_ID, "iat": float("nan"), "exp": now + 365 * 86400},
                    rs256(service_account.private_key))
    await assert_refused_and_nothing_done(daemon, key, None, token, "nan-iat")


async def test_keys_are_not_stored_in_clear(daemon: Daemon, key: str, service_account: ServiceAccount) -> None:
    async with client_session() as client:
        await ok(client, daemon, "GetAccountInfo", key=key)  # the key has been used (and its use noted)
    stored = b"".join(p.read_bytes() for p in daemon.data_dir.glob("voxgate.db*"))
    assert stored, "no store found"
    assert key.encode() not in stored
    private_body = "".join(service_account.private_pem.strip().splitlines()[1:-1])
    assert private_body[:64].encode() not in stored
    assert b"PRIVATE KEY" not in stored


async def test_deleted_keys_are_refused_at_once(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        doomed = create_api_key(daemon.data_dir)
        doomed_id = (await ok(client, daemon, "GetAccountInfo", key=doomed))["result"]["key_id"]
        created = (await ok(client, daemon, "CreateKey", {"description": "doomed service account"}, key=key))["result"]
        account = ServiceAccount(str(created["key_id"]), str(created["private_key"]))
        assert (await call(client, daemon, "GetAccountInfo", bearer=official_client_token(account))).status == 200
        for key_id in (doomed_id, account.key_id):
            assert (await ok(client, daemon, "DeleteKey", {"key_id": key_id}, key=key))["result"] == 1
        refused = await call(client, daemon, "GetAccountInfo", key=doomed)
        assert refused.status == 401 and refused.error()[0] == ERR_AUTH, refused.text
        refused = await call(client, daemon, "GetAccountInfo", bearer=official_client_token(account))
        assert refused.status == 401 and refused.error()[0] == ERR_AUTH, refused.text
        # The private key the answer carried is not kept by the box.
        keys = await ok(client, daemon, "GetKeys", {"count": "1000"}, key=key)
        assert account.key_id not in {k["key_id"] for k in keys["result"]}
        assert "PRIVATE KEY" not in json.dumps(keys)


# Rate limits


async def exhaust(client: aiohttp.ClientSession, daemon: Daemon, keys: list[str], limit: int = 200) -> tuple[
        int, Answer]:
    """Call GetAccountInfo with `keys` in turn until a 429: (requests that succeeded, the 429 answer)."""
    for n in range(limit):
        answer = await call(client, daemon, "GetAccountInfo", key=keys[n % len(keys)])
        if answer.status == 429:
            return n, answer
        assert answer.status == 200, answer.text
    raise AssertionError(f"no 429 within {limit} requests")


def retry_after(answer: Answer, why: str) -> float:
    assert answer.status == 429, answer.text
    code, msg = answer.error()
    assert code == ERR_RATE, answer.text
    assert why in msg, msg
    assert answer.retry_after is not None and answer.retry_after.isdigit(), answer.retry_after
    seconds = int(answer.retry_after)
    assert 1 <= seconds <= 10, seconds
    return float(seconds)


async def test_per_key_rate_limit_429_retry_after_then_recovers(tmp_path: Path) -> None:
    with limited_daemon(tmp_path, rate_per_key=2.0, burst_per_key=4.0) as daemon:
        busy, calm = create_api_key(daemon.data_dir), create_api_key(daemon.data_dir)
        async with client_session() as client:
            done, limited = await exhaust(client, daemon, [busy])
            assert done >= 4, "the burst was not allowed"
            wait = retry_after(limited, "with this key")
            # Another key is not limited by this one's burst.
            assert (await call(client, daemon, "GetAccountInfo", key=calm)).status == 200
            again = await call(client, daemon, "GetAccountInfo", key=busy)
            assert again.status == 429, again.text
            await asyncio.sleep(wait + 0.1)
            recovered = await call(client, daemon, "GetAccountInfo", key=busy)
            assert recovered.status == 200, recovered.text
        assert daemon.proc.poll() is None


async def test_per_source_rate_limit_applies_across_keys(tmp_path: Path) -> None:
    with limited_daemon(tmp_path, rate_per_source=2.0, burst_per_source=6.0) as daemon:
        keys = [create_api_key(daemon.data_dir) for _ in range(3)]
        async with client_session() as client:
            done, limited = await exhaust(client, daemon, keys[:2])
            assert done >= 6, "the burst was not allowed"
            wait = retry_after(limited, "from this address")
            # A fresh key, or no key at all, from the same address: still limited.
            fresh = await call(client, daemon, "GetAccountInfo", key=keys[2])
            assert fresh.status == 429, fresh.text
            retry_after(fresh, "from this address")
            anonymous = await call(client, daemon, "GetAccountInfo")
            assert anonymous.status == 429, anonymous.text
            # A forwarding header does not make another source of the same connection.
            for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
                spoofed = await call(client, daemon, "GetAccountInfo", key=keys[2],
                                     headers={header: "203.0.113.7" if header != "Forwarded" else "for=203.0.113.7"})
                assert spoofed.status == 429, (header, spoofed.text)
            # Another address is not.
            async with source_client("127.0.0.2") as other:
                assert (await call(other, daemon, "GetAccountInfo", key=keys[2])).status == 200
            await asyncio.sleep(wait + 0.1)
            recovered = await call(client, daemon, "GetAccountInfo", key=keys[2])
            assert recovered.status == 200, recovered.text
        assert daemon.proc.poll() is None


async def test_failed_authentications_lock_the_source_out_even_with_a_valid_key(tmp_path: Path) -> None:
    budget = 20  # failures a minute (and at once): one more every 3 s
    with limited_daemon(tmp_path, auth_failures_per_minute=float(budget)) as daemon:
        valid = create_api_key(daemon.data_dir)
        async with client_session() as client:
            assert (await call(client, daemon, "GetAccountInfo", key=valid)).status == 200
            refused = 0
            for _ in range(budget + 20):
                answer = await call(client, daemon, "GetAccountInfo", key="guess-" + secrets.token_urlsafe(16))
                if answer.status == 429:
                    break
                assert answer.status == 401, answer.text
                refused += 1
            else:
                raise AssertionError("guessing keys was never slowed down")
            assert refused >= budget, refused
            retry_after(answer, "from this address")
            locked = await call(client, daemon, "GetAccountInfo", key=valid)
            wait = retry_after(locked, "from this address")
            # Other addresses are not locked out by this one's guesses.
            async with source_client("127.0.0.3") as other:
                assert (await call(other, daemon, "GetAccountInfo", key=valid)).status == 200
            await asyncio.sleep(wait + 0.1)
            unlocked = await call(client, daemon, "GetAccountInfo", key=valid)
            assert unlocked.status == 200, unlocked.text
            # The budget refilled by one: one more guess, and the source waits again.
            guess = await call(client, daemon, "GetAccountInfo", key="guess-" + secrets.token_urlsafe(16))
            assert guess.status == 401, guess.text
            locked = await call(client, daemon, "GetAccountInfo", key=valid)
            retry_after(locked, "from this address")
        assert daemon.proc.poll() is None


# Sizes


async def oversized_chunks(key: str, name: str, total: int) -> AsyncIterator[bytes]:
    yield f"account_id={ACCOUNT_ID}&api_key={key}&scenario_name={name}&scenario_script=".encode()
    chunk = b"x" * 65536
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


@pytest.mark.parametrize("how", ["content-length", "chunked", "multipart", "no-credentials"])
async def test_oversized_body_413_and_daemon_unharmed(daemon: Daemon, key: str, how: str) -> None:
    name = unique("big")
    script = "x" * (MAX_BODY_BYTES + 1)
    async with client_session() as client:
        if how == "content-length":
            answer = await call(client, daemon, "AddScenario", {"scenario_name": name, "scenario_script": script},
                                key=key)
        elif how == "chunked":
            answer = await call(client, daemon, "AddScenario", data=oversized_chunks(key, name, MAX_BODY_BYTES + 1),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        elif how == "multipart":
            form = aiohttp.FormData({"account_id": ACCOUNT_ID, "api_key": key, "scenario_name": name,
                                     "scenario_script": script}, default_to_multipart=True)
            answer = await call(client, daemon, "AddScenario", data=form)
        else:
            answer = await call(client, daemon, "AddScenario", {"scenario_name": name, "scenario_script": script})
        assert answer.status == 413, (answer.status, answer.text[:300])
        code, _ = answer.error()
        assert code == ERR_TOO_LARGE
        assert daemon.proc.poll() is None, daemon.stderr_text()[-2000:]
        body = await ok(client, daemon, "GetScenarios", {"scenario_name": name}, key=key)
        assert body["total_count"] == 0, body


async def test_scenario_over_256k_characters_refused(daemon: Daemon, key: str) -> None:
    at_limit, over = unique("at-limit"), unique("over-limit")
    async with client_session() as client:
        script = "//" + "x" * (SCENARIO_CHARS - 2)
        added = await ok(client, daemon, "AddScenario", {"scenario_name": at_limit, "scenario_script": script}, key=key)
        assert added["result"] == 1
        refused = await call(client, daemon, "AddScenario", {"scenario_name": over, "scenario_script": script + "x"},
                             key=key)
        assert refused.status == 400, refused.text[:300]
        code, msg = refused.error()
        assert code == ERR_PARAMETER and "scenario_script" in msg, msg
        assert (await ok(client, daemon, "GetScenarios", {"scenario_name": over}, key=key))["total_count"] == 0
        # Nor can a stored scenario grow over the limit.
        grown = await call(client, daemon, "SetScenarioInfo",
                           {"required_scenario_name": at_limit, "scenario_script": script + "x"}, key=key)
        assert grown.status == 400, grown.text[:300]
        assert grown.error()[0] == ERR_PARAMETER
        stored = await ok(client, daemon, "GetScenarios", {"scenario_name": at_limit, "with_script": "true"}, key=key)
        assert len(stored["result"][0]["scenario_script"]) == SCENARIO_CHARS


async def test_scenario_at_the_limit_of_non_ascii_characters_accepted(daemon: Daemon, key: str) -> None:
    name = unique("cjk")
    script = "//" + "語" * (SCENARIO_CHARS - 2)
    async with client_session() as client:
        added = await call(client, daemon, "AddScenario", {"scenario_name": name, "scenario_script": script}, key=key)
        assert added.status == 200, (added.status, added.text[:300])


# Recordings and session logs


@dataclass(frozen=True)
class SessionFiles:
    session_id: int
    log_url: str
    record_url: str


async def finished_session(client: aiohttp.ClientSession, daemon: Daemon, key: str, rule: str,
                           custom_data: str = "", *, with_records: bool = False) -> dict[str, Any]:
    """Start a session of `rule`, wait for its end; its call-history entry (with records)."""
    started = await ok(client, daemon, "StartScenarios", {"rule_name": rule, "script_custom_data": custom_data},
                       key=key)
    session_id = int(started["call_session_history_id"])
    assert await async_wait_until(lambda: "session ended" in read_text(daemon.session_log(session_id)), 10.0), \
        read_text(daemon.session_log(session_id))
    deadline = time.monotonic() + 10
    while True:
        history = await ok(client, daemon, "GetCallHistory", {
            "from_date": utc(time.time() - 86400), "to_date": utc(time.time() + 86400),
            "call_session_history_id": str(session_id), "with_records": "true"}, key=key)
        entry: dict[str, Any] = history["result"][0]
        if entry["finish_reason"] != "in progress" and (entry["records"] or not with_records):
            return entry
        assert time.monotonic() < deadline, entry
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def recorded(daemon: Daemon, key: str) -> SessionFiles:
    async def run() -> SessionFiles:
        async with client_session() as client:
            entry = await finished_session(client, daemon, key, "record", with_records=True)
        [record] = entry["records"]
        return SessionFiles(int(entry["call_session_history_id"]), str(entry["log_file_url"]),
                            str(record["record_url"]))

    return asyncio.run(run())


async def test_real_recording_and_log_urls_work(daemon: Daemon, key: str, recorded: SessionFiles) -> None:
    marker = unique("marker")
    async with client_session() as client:
        assert recorded.record_url.startswith(f"{daemon.base_url}/records/"), recorded
        async with client.get(recorded.record_url) as resp:
            audio = await resp.read()
            assert resp.status == 200, audio[:200]
            assert resp.content_type == "audio/mpeg"
        assert audio[:3] == b"ID3" or (audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0), audio[:16]
        name = recorded.record_url.rsplit("/", 1)[1]
        assert audio == (daemon.data_dir / "records" / name).read_bytes()

        entry = await finished_session(client, daemon, key, "marker", marker)
        log_url = str(entry["log_file_url"])
        assert re.fullmatch(rf"{re.escape(daemon.base_url)}/logs/session/{entry['call_session_history_id']}/"
                            r"[0-9a-f]{32}", log_url), log_url
        for url in (log_url, log_url + "?follow=1"):
            async with client.get(url) as resp:
                text = await asyncio.wait_for(resp.text(), 10)
                assert resp.status == 200, text
                assert f"marker {marker} in session" in text, text
                assert "session ended" in text


async def test_secure_record_storage_recordings_need_credentials(daemon: Daemon, key: str) -> None:
    app, scenario, rule = unique("secure-app"), unique("secure-rec"), unique("secure-rule")
    async with client_session() as client:
        app_id = str((await ok(client, daemon, "AddApplication",
                               {"application_name": app, "secure_record_storage": "true"}, key=key))["application_id"])
        scenario_id = str((await ok(client, daemon, "AddScenario", {"scenario_name": scenario,
                                                                    "scenario_script": RECORDER_SCENARIO},
                                    key=key))["scenario_id"])
        await ok(client, daemon, "AddRule", {"application_id": app_id, "rule_name": rule, "rule_pattern": "x",
                                             "scenario_id": scenario_id}, key=key)
        entry = await finished_session(client, daemon, key, rule, with_records=True)
        url = str(entry["records"][0]["record_url"])
        async with client.get(url) as resp:
            audio = await resp.read()
        assert resp.status == 401, (resp.status, audio[:100])
        async with client.get(url, headers={"Authorization": f"Bearer {key}"}) as resp:
            audio = await resp.read()
        assert resp.status == 200 and len(audio) > 1000, (resp.status, audio[:100])
        async with client.get(url, params={"account_id": "1", "api_key": key}) as resp:
            assert resp.status == 200


async def test_deleted_recording_is_gone_from_its_url(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        entry = await finished_session(client, daemon, key, "record", with_records=True)
        [record] = entry["records"]
        url = str(record["record_url"])
        path = daemon.data_dir / "records" / url.rsplit("/", 1)[1]
        async with client.get(url) as resp:
            assert resp.status == 200
        assert (await ok(client, daemon, "DeleteRecord", {"record_url": url}, key=key))["result"] == 1
        assert not path.exists()
        async with client.get(url) as resp:
            assert resp.status == 404
        again = await call(client, daemon, "DeleteRecord", {"record_id": str(record["record_id"])}, key=key)
        assert again.status == 404, again.text


def traversal_targets(daemon: Daemon, recorded: SessionFiles, other_secret: str) -> list[str]:
    sid = recorded.session_id
    secret = recorded.log_url.rsplit("/", 1)[1]
    record = recorded.record_url.rsplit("/", 1)[1]
    wrong = ("0" if secret[0] != "0" else "1") + secret[1:]
    return [
        "/records/../voxgate.db",
        "/records/..%2fvoxgate.db",
        "/records/..%2Fvoxgate.db",
        "/records/%2e%2e/voxgate.db",
        "/records/%2e%2e%2fvoxgate.db",
        "/records/%2e%2e/%2e%2e/etc/passwd",
        "/records/../../../../../../../../etc/passwd",
        "/records/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/records/%252e%252e%252fvoxgate.db",
        "/records/..%5cvoxgate.db",
        "/records/....//voxgate.db",
        "/records//etc/passwd",
        "/records/%2fetc%2fpasswd",
        "/records/../leak.mp3",
        "/records/..%2fleak.mp3",
        "/records/%2e%2e%2fleak.wav",
        "/records/.%2e/leak.mp3",
        f"/records/{record}/../../voxgate.db",
        f"/records/{record}%00../../voxgate.db",
        "/records/voxgate.db%00.mp3",
        "/records/leak.mp3%00",
        "/records/%00",
        f"/records/{record}.json",
        "/records/",
        "/records",
        "//etc/passwd",
        "/../voxgate.db",
        "/%2e%2e/voxgate.db",
        "/voxgate.db",
        "/leak.mp3",
        f"/logs/session/{sid}/../../../voxgate.db",
        f"/logs/session/{sid}/..%2f..%2f..%2fvoxgate.db",
        f"/logs/session/{sid}/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"/logs/session/{sid}/{secret}/../../../../voxgate.db",
        f"/logs/session/{sid}/{secret}%2f..%2f..%2f..%2fvoxgate.db",
        f"/logs/session/{sid}/{secret}%00",
        f"/logs/session/{sid}/{secret[:-1]}%00",
        f"/logs/session/{sid}/{wrong}",
        f"/logs/session/{sid}/{wrong}?follow=1",
        f"/logs/session/{sid}/{secret.upper()}",
        f"/logs/session/{sid}/{secret[:-1]}",
        f"/logs/session/{sid}/{secret}0",
        f"/logs/session/{sid}/{other_secret}",  # another session's secret
        f"/logs/session/{sid}/{other_secret}?follow=1",
        f"/logs/session/{sid + 1000}/{secret}",
        f"/logs/session/0/{secret}",
        f"/logs/session/-1/{secret}",
        f"/logs/session/{sid}%2f..%2f..%2fvoxgate.db/{secret}",
        f"/logs/session/..%2f{sid}/{secret}",
        "/logs/session/1",
        "/logs/",
        "/logs/sessions/1.log",
        f"/logs/sessions/{sid}.log",
    ]


async def test_path_traversal_in_recording_and_log_urls_refused(daemon: Daemon, key: str,
                                                               recorded: SessionFiles) -> None:
    async with client_session() as client:
        other = await finished_session(client, daemon, key, "marker", unique("other"))
    other_secret = str(other["log_file_url"]).rsplit("/", 1)[1]
    log_text = read_text(daemon.session_log(recorded.session_id)).encode()
    assert log_text, "the recorded session has no log"
    failures = []
    for target in traversal_targets(daemon, recorded, other_secret):
        status, answer = await raw_get(daemon.port, target)
        body = answer.partition(b"\r\n\r\n")[2]
        leaked = [what for what in (b"SQLite format", b"root:", b"LEAKED-OUTSIDE-RECORDINGS", b"record url")
                  if what in body]
        if status not in (400, 404) or leaked:
            failures.append((target, status, leaked, body[:120]))
    assert not failures, failures
    assert daemon.proc.poll() is None
    # The real URLs still work after all that.
    async with client_session() as client:
        async with client.get(recorded.log_url) as resp:
            assert resp.status == 200
            assert "record url" in await resp.text()
        async with client.get(recorded.record_url) as resp:
            assert resp.status == 200


HUGE_IDS = [
    ("log-id-over-64-bits", "/logs/session/{30}/{secret}"),  # OverflowError in SQLite
    ("log-id-of-5000-digits", "/logs/session/{5000}/{secret}"),  # ValueError: int() digit limit
    ("session-url-id-of-5000-digits", "/request/{5000}/ab"),  # ValueError: int() digit limit
]


@pytest.mark.parametrize("template", [t for _, t in HUGE_IDS], ids=[i for i, _ in HUGE_IDS])
async def test_url_with_a_huge_session_id_is_404(daemon: Daemon, recorded: SessionFiles, template: str) -> None:
    secret = recorded.log_url.rsplit("/", 1)[1]
    target = template.replace("{30}", "9" * 30).replace("{5000}", "9" * 5000).replace("{secret}", secret)
    status, answer = await raw_get(daemon.port, target)
    assert status == 404, answer[:300]


async def test_huge_whole_number_parameter_is_a_parameter_error(daemon: Daemon, key: str) -> None:
    async with client_session() as client:
        answer = await call(client, daemon, "GetCallHistory", {
            "from_date": utc(time.time() - 86400), "to_date": utc(time.time() + 86400),
            "call_session_history_id": "9" * 30}, key=key)
        assert answer.status == 400, answer.text
        assert answer.error()[0] == ERR_PARAMETER


# Audit log


async def test_set_rule_info_renames_a_rule(daemon: Daemon, key: str) -> None:
    app, rule, renamed = unique("rename-app"), unique("rule"), unique("renamed")
    async with client_session() as client:
        app_id = str((await ok(client, daemon, "AddApplication", {"application_name": app}, key=key))["application_id"])
        rule_id = str((await ok(client, daemon, "AddRule", {"application_id": app_id, "rule_name": rule,
                                                            "rule_pattern": "x"}, key=key))["rule_id"])
        answer = await call(client, daemon, "SetRuleInfo", {"rule_id": rule_id, "rule_name": renamed}, key=key)
        assert answer.status == 200, answer.text
        rules = await ok(client, daemon, "GetRules", {"application_id": app_id}, key=key)
        assert [r["rule_name"] for r in rules["result"]] == [renamed]


async def test_audit_trail_of_a_key_is_complete_and_redacted(daemon: Daemon, key: str) -> None:
    since = time.time()
    result = run_appliance(["apikey", "create", "--data-dir", str(daemon.data_dir), "--description", "auditor"],
                           cwd=daemon.data_dir.parent)
    assert result.returncode == 0, result.stderr
    audited, key_id = result.stdout.strip().splitlines()[-1], created_key_id(result.stdout)
    app, rule, bad = unique("audit-app"), unique("rule"), unique("bad")
    user, secret_name = unique("u"), "audit_" + uuid.uuid4().hex[:8]
    password, password2, secret_value = (secrets.token_urlsafe(18) for _ in range(3))
    other_app = unique("other-key-app")

    async with client_session() as client:
        async def change(method: str, params: dict[str, str]) -> Answer:
            # The address audited is the connection's, whatever a forwarding header claims.
            return await call(client, daemon, method, params, key=audited,
                              headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})

        async def read(method: str, params: dict[str, str] | None = None) -> None:
            answer = await call(client, daemon, method, params, key=audited)
            assert answer.status == 200, (method, answer.text)

        added = await change("AddApplication", {"application_name": app})
        assert added.status == 200, added.text
        app_id = str(added.json()["application_id"])
        await read("GetApplications")
        rule_added = await change("AddRule", {"application_id": app_id, "rule_name": rule, "rule_pattern": "audit-.*"})
        assert rule_added.status == 200, rule_added.text
        rule_id = str(rule_added.json()["rule_id"])
        await read("GetRules", {"application_id": app_id})
        assert (await change("SetRuleInfo", {"rule_id": rule_id, "rule_pattern": "audited-.*"})).status == 200
        refused = await change("AddScenario", {"scenario_name": bad, "scenario_script": "VoxEngine.addEventListener("})
        assert refused.status == 400, refused.text
        assert refused.error()[0] == ERR_SCRIPT
        await read("GetAccountInfo")
        user_added = await change("AddUser", {"application_id": app_id, "user_name": user, "user_password": password,
                                              "user_display_name": "Audited"})
        assert user_added.status == 200, user_added.text
        secret_added = await change("AddSecret", {"application_id": app_id, "secret_name": secret_name,
                                                  "secret_value": secret_value})
        assert secret_added.status == 200, secret_added.text
        assert (await change("SetUserInfo", {"user_name": user, "user_password": password2})).status == 200
        await read("GetSecrets", {"application_id": app_id})
        assert (await change("DelRule", {"rule_id": rule_id})).status == 200
        await read("GetAuditLog", {"from_date": utc(since - 60), "to_date": utc(time.time() + 60)})
        # A change by another key.
        assert (await call(client, daemon, "AddApplication", {"application_name": other_app}, key=key)).status == 200
        until = time.time()

        window = {"from_date": utc(since - 1), "to_date": utc(until + 1)}
        log = await ok(client, daemon, "GetAuditLog", {**window, "filtered_key_id": key_id, "count": "100"}, key=key)
        everyone = await ok(client, daemon, "GetAuditLog", {**window, "count": "1000"}, key=key)

    entries = log["result"]
    got = [(e["cmd"], e["ip"], e["error_code"]) for e in entries]
    ip = HOST
    assert got == [
        ("apikey create", "local", 0),
        ("AddApplication", ip, 0),
        ("AddRule", ip, 0),
        ("SetRuleInfo", ip, 0),
        ("AddScenario", ip, ERR_SCRIPT),
        ("AddUser", ip, 0),
        ("AddSecret", ip, 0),
        ("SetUserInfo", ip, 0),
        ("DelRule", ip, 0),
    ], got
    assert log["total_count"] == len(entries)
    assert all(e["key_id"] == key_id for e in entries), entries
    stamps = [e["requested_unix"] for e in entries]
    assert stamps == sorted(stamps) and since - 1 <= stamps[0] and stamps[-1] <= until + 1, stamps
    by_cmd = {e["cmd"]: e for e in entries}
    assert by_cmd["apikey create"]["parameters"] == {"description": "auditor", "service_account": "false"}
    assert by_cmd["AddApplication"]["parameters"] == {"application_name": app}
    assert by_cmd["AddRule"]["parameters"] == {"application_id": app_id, "rule_name": rule,
                                               "rule_pattern": "audit-.*"}
    assert by_cmd["SetRuleInfo"]["parameters"] == {"rule_id": rule_id, "rule_pattern": "audited-.*"}
    assert by_cmd["AddScenario"]["parameters"]["scenario_name"] == bad
    assert by_cmd["AddScenario"]["error_msg"], by_cmd["AddScenario"]
    assert all(e["error_msg"] == "" for e in entries if e["error_code"] == 0), entries
    assert by_cmd["AddUser"]["parameters"]["user_password"] == "***"
    assert by_cmd["AddSecret"]["parameters"]["secret_value"] == "***"
    assert by_cmd["AddSecret"]["parameters"]["secret_name"] == secret_name
    assert by_cmd["SetUserInfo"]["parameters"] == {"user_name": user, "user_password": "***"}
    assert by_cmd["DelRule"]["parameters"] == {"rule_id": rule_id}
    for e in entries:
        assert e["parameters"].get("api_key", "***") == "***", e
        assert "account_id" not in e["parameters"] and "cmd" not in e["parameters"], e
    text = json.dumps(log)
    for value in (password, password2, secret_value, audited):
        assert value not in text
    # Nor in the store's audit table, whatever the API shows.
    stored = json.dumps(db_rows(daemon.db_path, "SELECT * FROM audit_log"))
    for value in (password, password2, secret_value, audited, key):
        assert value not in stored
    # The other key's change is in the log, not under this key.
    others = [e for e in everyone["result"] if e["parameters"].get("application_name") == other_app]
    assert len(others) == 1 and others[0]["key_id"] != key_id, others
