"""The box's Management API over HTTPS: service-account JWTs, certificate pinning, errors as one line.

The box's certificate is self-signed, so there is no CA to check it against; instead it is pinned by
its SHA-256 fingerprint, as SSH pins host keys: the first connection remembers it in a known-hosts
file (or `--fingerprint` names it up front), and any later change is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

DEFAULT_PORT = 8443
API_PATH = "/platform_api"
TIMEOUT = 30.0
TOKEN_LIFETIME = 60  # seconds; a token is made per request, as the official clients do
RATE_LIMIT_RETRIES = 3


class VoxpushError(Exception):
    """A failure to report to the user as is (one line unless it must say more), exit status 1."""


class ApiError(VoxpushError):
    """The box answered {"error": {"code", "msg"}}."""

    def __init__(self, cmd: str, status: int, code: int, msg: str) -> None:
        self.cmd, self.status, self.code, self.msg = cmd, status, code, msg
        super().__init__(f"{cmd}: {msg} (error {code})")


@dataclass(frozen=True)
class Credentials:
    account_id: int
    key_id: str
    private_key: str


def load_credentials(path: Path) -> Credentials:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(int(data["account_id"]), str(data["key_id"]), str(data["private_key"]))
    except FileNotFoundError:
        raise VoxpushError(
            f"credentials file {path} not found (make one on the box with `appliance apikey create "
            "--service-account FILE`, and name it with VOX_CI_CREDENTIALS in .env)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VoxpushError(f"{path}: not a service-account key file ({exc!r})") from None


def make_token(creds: Credentials, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now) - 5  # a little slack for the box's clock
    claims = {"iss": str(creds.account_id), "iat": issued, "exp": issued + 5 + TOKEN_LIFETIME}
    try:
        return jwt.encode(claims, creds.private_key, algorithm="RS256", headers={"kid": creds.key_id})
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise VoxpushError(f"cannot sign with the credentials' private_key: {exc}") from None


def parse_host(text: str) -> tuple[str, int]:
    """HOST, HOST:PORT, [V6]:PORT or https://HOST[:PORT][/...] -> (host, port)."""
    text = text.strip()
    try:
        if "://" in text:
            url = urllib.parse.urlsplit(text)
            if url.scheme != "https":
                raise VoxpushError(f"{text}: only https:// is supported")
            text = url.netloc
        url = urllib.parse.urlsplit(f"//{text}")
        host, port = url.hostname, url.port
    except ValueError as exc:
        raise VoxpushError(f"invalid host {text!r}: {exc}") from None
    if not host:
        raise VoxpushError(f"invalid host {text!r}")
    return host, port or DEFAULT_PORT


def host_label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Fingerprints


def fingerprint(der: bytes) -> str:
    return "SHA256:" + hashlib.sha256(der).hexdigest().upper()


def normalize_fingerprint(text: str) -> str:
    """Any spelling (case, colons, with or without the SHA256: prefix) -> SHA256:UPPERHEX."""
    value = text.strip()
    if value.upper().startswith("SHA256:"):
        value = value[len("SHA256:"):]
    value = value.replace(":", "").upper()
    if len(value) != 64 or any(c not in "0123456789ABCDEF" for c in value):
        raise VoxpushError(f"invalid fingerprint {text!r}: expected SHA256: and 64 hex digits")
    return "SHA256:" + value


def known_hosts_path() -> Path:
    return Path(os.environ.get("VOXPUSH_KNOWN_HOSTS") or Path.home() / ".config" / "voxpush" / "known_hosts")


class KnownHosts:
    """A file of "HOST:PORT SHA256:HEX" lines, one per box."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _entries(self) -> list[tuple[str, str]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [(parts[0], parts[1]) for parts in (line.split() for line in lines)
                if len(parts) >= 2 and not parts[0].startswith("#")]

    def lookup(self, label: str) -> str | None:
        for name, fp in self._entries():
            if name == label:
                return normalize_fingerprint(fp)
        return None

    def remember(self, label: str, fp: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(f"{label} {fp}\n")


def check_pin(label: str, seen: str, known: KnownHosts, explicit: str | None) -> None:
    """Accept, remember (first use) or refuse the certificate `seen` for the box `label`."""
    stored = known.lookup(label)
    expected = normalize_fingerprint(explicit) if explicit else stored
    if expected is not None and expected != seen:
        if explicit:
            raise VoxpushError(f"the certificate of {label} is {seen}, not the {expected} given with --fingerprint")
        raise VoxpushError(
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: BOX CERTIFICATE HAS CHANGED!                @\n"
            "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n"
            "Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n"
            "It is also possible that the box's certificate has just been changed (a new box, a reset).\n"
            f"The fingerprint of the certificate {label} sent is\n  {seen}\n"
            f"Please contact your system administrator.\n"
            f"Offending entry for {label} in {known.path} (expected {stored}).\n"
            f"To trust the new certificate, remove that line (e.g. `sed -i '/^{_sed_escape(label)} /d' "
            f"{known.path}`)\nor run with --fingerprint {seen}.\n"
            "Certificate verification failed.")
    if stored is None:
        if explicit is None:
            print(f"The authenticity of box '{label}' can't be established.\n"
                  f"Its certificate's fingerprint is {seen}.", file=sys.stderr)
        known.remember(label, seen)
        print(f"Warning: permanently added '{label}' ({seen}) to the list of known boxes ({known.path}).",
              file=sys.stderr)


def _sed_escape(text: str) -> str:
    return "".join("\\" + c if c in "[].*/" else c for c in text)


# Transport


def form(params: Mapping[str, Any]) -> dict[str, str]:
    """Voximplant's conventions: booleans true/false, lists ';'-separated, None left out."""
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = ";".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


class Client:
    """One box: Management API calls and session logs over a pinned HTTPS connection."""

    def __init__(self, host: str, port: int, creds: Credentials | None, known: KnownHosts,
                 explicit_fp: str | None = None, timeout: float = TIMEOUT) -> None:
        self.host, self.port, self.creds = host, port, creds
        self.label = host_label(host, port)
        self.known, self.explicit_fp, self.timeout = known, explicit_fp, timeout
        self._conn: http.client.HTTPSConnection | None = None
        self.writes: list[str] = []  # the write commands sent, in order (reports and tests)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self, timeout: float | None) -> http.client.HTTPSConnection:
        # No CA can vouch for a LAN box's self-signed certificate: verification is the pin below.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self.host, self.port, context=context, timeout=timeout)
        try:
            conn.connect()
        except ssl.SSLError as exc:
            conn.close()
            raise VoxpushError(f"TLS with {self.label} failed: {exc.reason or exc} (is it the box's HTTPS port?)"
                               ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise VoxpushError(f"cannot reach the box at {self.label}: {_reason(exc)}") from None
        der = conn.sock.getpeercert(binary_form=True) if isinstance(conn.sock, ssl.SSLSocket) else None
        if not der:
            conn.close()
            raise VoxpushError(f"{self.label} sent no certificate")
        try:
            check_pin(self.label, fingerprint(der), self.known, self.explicit_fp)
        except BaseException:
            conn.close()
            raise
        return conn

    def _request(self, method: str, path: str, body: str | None, headers: dict[str, str]
                 ) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):  # a kept-alive connection the box closed meanwhile is retried once
            if self._conn is None:
                self._conn = self._connect(self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                resp = self._conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt:
                    raise VoxpushError(f"{self.label} closed the connection: {_reason(exc)}") from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise VoxpushError(f"request to {self.label} failed: {_reason(exc)}") from None
        raise AssertionError("unreachable")

    def call(self, cmd: str, **params: Any) -> dict[str, Any]:
        """One Management API method; its JSON answer, or ApiError."""
        if self.creds is None:
            raise VoxpushError("no credentials")
        body = urllib.parse.urlencode({"cmd": cmd, **form(params)})
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            headers = {"Authorization": f"Bearer {make_token(self.creds)}",
                       "Content-Type": "application/x-www-form-urlencoded"}
            status, resp_headers, data = self._request("POST", API_PATH, body, headers)
            try:
                answer = json.loads(data)
            except ValueError:
                answer = None
            error = answer.get("error") if isinstance(answer, dict) else None
            if status == 429 and attempt < RATE_LIMIT_RETRIES:
                time.sleep(min(float(resp_headers.get("retry-after", "1") or 1), 10.0))
                continue
            if isinstance(error, dict):
                raise _api_error(cmd, status, error, self.label)
            if status != 200 or not isinstance(answer, dict):
                raise VoxpushError(f"{cmd}: unexpected answer from {self.label} (HTTP {status}): "
                                   f"{data[:200].decode(errors='replace')}")
            if not cmd.startswith("Get"):
                self.writes.append(cmd)
            return answer
        raise AssertionError("unreachable")

    def stream(self, url: str) -> Iterator[bytes]:
        """GET a URL the box gave (a session log), chunk by chunk as it arrives; no timeout while it streams."""
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            if (parts.hostname, port) != (self.host, self.port):
                raise VoxpushError(f"{url}: not on the box {self.label}")
            conn = self._connect(None)
        else:
            conn = http.client.HTTPConnection(parts.hostname or self.host, port)
        try:
            conn.request("GET", target)
            resp = conn.getresponse()
            if resp.status != 200:
                raise VoxpushError(f"GET {parts.path}: HTTP {resp.status}: {resp.read(200).decode(errors='replace')}")
            while chunk := resp.read1(65536):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise VoxpushError(f"reading {parts.path} from {self.label} failed: {_reason(exc)}") from None
        finally:
            conn.close()


def _api_error(cmd: str, status: int, error: dict[str, Any], label: str) -> ApiError:
    code, msg = int(error.get("code") or 0), str(error.get("msg") or "")
    if status == 401 or code == 100:
        msg = (f"the box {label} refused the key: {msg or 'authorization failed'} "
               "(check VOX_CI_CREDENTIALS: is this key made on this box, and not deleted?)")
    return ApiError(cmd, status, code, msg)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the box running, and is this its HTTPS port?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
