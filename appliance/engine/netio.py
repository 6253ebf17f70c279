"""What Net.httpRequest and Net.sendMail do on the wire, with VoxEngine's limits and result codes.

Failures never raise: they come back as a result with a negative code (reference section 2.5):
-2 malformed URL, -3 host not found, -4 connection error, -5 too many redirects, -6 network error,
-7 timeout, -8 internal error, -9 response larger than 2 MB. SMTP answers carry the SMTP code.
"""

from __future__ import annotations

import asyncio
import email.message
import logging
import smtplib
import socket
import ssl
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from appliance.engine import limits

log = logging.getLogger(__name__)

USER_AGENT = "VoxEngine/1.0"
SMTP_DEFAULT_PORT = 465  # SMTPS, as VoxEngine's default
SMTP_TIMEOUT_S = 30.0
_BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/zip", "application/pdf")


def _failure(code: int, error: str) -> dict[str, Any]:
    return {"code": code, "error": error, "headers": [], "raw_headers": ""}


class HttpClient:
    """One aiohttp client for all sessions; created on first use inside the event loop."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=60),
                auto_decompress=True,
                cookie_jar=aiohttp.DummyCookieJar(),  # sessions must not share cookies
            )
        return self._session

    async def fetch(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Perform one Net.httpRequest command; the HttpRequestResult to hand back to JS."""
        try:
            url = URL(cmd["url"])
            if url.scheme not in ("http", "https") or not url.host:
                return _failure(-2, f"malformed URL: {cmd['url']!r}")
        except (ValueError, TypeError):
            return _failure(-2, f"malformed URL: {cmd['url']!r}")
        headers: CIMultiDict[str] = CIMultiDict(cmd["headers"])
        headers.setdefault("User-Agent", USER_AGENT)
        data: bytes | None = None
        body = cmd.get("body")
        if body is not None:
            data = bytes(body["bytes"]) if "bytes" in body else str(body["text"]).encode("utf-8")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")  # as curl does
        timeout = aiohttp.ClientTimeout(total=cmd["timeout"], sock_connect=cmd["connectTimeout"])
        try:
            async with self._client().request(
                cmd["method"],
                url,
                params=cmd["params"] or None,
                headers=headers,
                data=data,
                timeout=timeout,
                max_redirects=limits.HTTP_MAX_REDIRECTS,
            ) as response:
                raw = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    raw += chunk
                    if len(raw) > limits.HTTP_MAX_RESPONSE_BYTES:
                        return _failure(-9, f"the response is larger than {limits.HTTP_MAX_RESPONSE_BYTES} bytes")
                return self._result(response, bytes(raw), cmd["rawOutput"])
        except aiohttp.InvalidURL:
            return _failure(-2, f"malformed URL: {cmd['url']!r}")
        except aiohttp.TooManyRedirects:
            return _failure(-5, "too many redirects")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, socket.gaierror):
                return _failure(-3, f"host not found: {url.host}")
            return _failure(-4, f"connection error: {exc.os_error or exc}")
        except TimeoutError:
            return _failure(-7, "timeout")
        except aiohttp.ClientError as exc:
            return _failure(-6, f"network error: {exc}")
        except Exception as exc:
            log.exception("HTTP request to %s failed", url)
            return _failure(-8, f"internal error: {exc}")

    @staticmethod
    def _result(response: aiohttp.ClientResponse, raw: bytes, raw_output: bool) -> dict[str, Any]:
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        result: dict[str, Any] = {
            "code": response.status,
            "headers": [{"key": k, "value": v} for k, v in pairs],
            "raw_headers": "".join(f"{k}: {v}\r\n" for k, v in pairs),
        }
        content_type = response.headers.get("Content-Type", "").lower()
        if not content_type.startswith(_BINARY_TYPES):
            result["text"] = raw.decode(response.charset or "utf-8", errors="replace")
        if raw_output:
            result["data"] = list(raw)
        return result

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _send_mail(cmd: dict[str, Any]) -> dict[str, Any]:
    """Blocking SMTP delivery of one Net.sendMail command (run on an executor thread)."""
    host, _, port_text = cmd["server"].rpartition(":")
    if not host or not port_text.isdigit():
        host, port_text = cmd["server"], ""
    port = int(cmd["port"] or port_text or SMTP_DEFAULT_PORT)
    message = email.message.EmailMessage()
    message["Subject"] = cmd["title"]
    message["From"] = cmd["from"]
    message["To"] = ", ".join(cmd["to"])
    if cmd["cc"]:
        message["Cc"] = ", ".join(cmd["cc"])
    message.set_content(cmd["body"])
    if cmd["html"] is not None:
        message.add_alternative(cmd["html"], subtype="html")
    recipients = cmd["to"] + cmd["cc"] + cmd["bcc"]
    if not recipients:
        return {"code": -2, "error": "no recipients"}
    try:
        smtp: smtplib.SMTP
        if port == SMTP_DEFAULT_PORT:
            smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_S, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_S)
        with smtp:
            smtp.ehlo()
            if port != SMTP_DEFAULT_PORT and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if cmd["login"]:
                smtp.login(cmd["login"], cmd["password"] or "")
            refused = smtp.send_message(message, cmd["from"], recipients)
        if refused:
            return {"code": 250, "error": f"refused recipients: {', '.join(refused)}"}
        return {"code": 250}
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        return {"code": exc.smtp_code, "error": error.decode("utf-8", "replace") if isinstance(error, bytes) else error}
    except smtplib.SMTPRecipientsRefused as exc:
        return {"code": 550, "error": f"all recipients refused: {', '.join(exc.recipients)}"}
    except (OSError, smtplib.SMTPException) as exc:
        return {"code": -1, "error": f"SMTP error: {exc}"}


async def send_mail(cmd: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.get_running_loop().run_in_executor(None, _send_mail, cmd)
