"""The one host function a session's JS may call synchronously: pure lookups and computations.

It reads no session state except the size of the session's own heap and changes nothing; every
command and event still goes through the outbox and the dispatch function. It never raises into
JS: refused input comes back as {"error": text}, which the prelude throws as a JS Error.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import datetime
import hashlib
import hmac
import json
import logging
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import phonenumbers
from phonenumbers import geocoder

from appliance.engine import symbols

log = logging.getLogger(__name__)


class Refused(ValueError):
    """Input the API refuses; its message becomes the JS Error's."""


def _symbols(path: str) -> str:
    try:
        return symbols.tree_json(path)
    except KeyError:
        raise Refused(f"unknown name {path}") from None


def _codec(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise Refused(f"unknown encoding {name!r}") from None


def _digest(algorithm: str, text: str) -> str:
    if algorithm not in ("md5", "sha1", "sha256"):
        raise Refused(f"unknown digest {algorithm}")
    return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()


def _hmac_sha256(key: str, text: str) -> str:
    return hmac.new(key.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def _encode(text: str, encoding: str) -> list[int]:
    return list(text.encode(_codec(encoding), errors="replace"))


def _decode(data: list[int], encoding: str) -> str:
    return bytes(b & 255 for b in data).decode(_codec(encoding), errors="replace")


def _base64_encode(data: dict[str, Any]) -> str:
    raw = bytes(b & 255 for b in data["bytes"]) if "bytes" in data else str(data["text"]).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def _base64_decode(text: str) -> list[int]:
    try:
        return list(base64.b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise Refused("base64_decode: not base64 text") from None


def _tzoffset(name: str, at_ms: float) -> float:
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Refused(f"getLocalTime: unknown time zone {name!r}") from None
    moment = datetime.datetime.fromtimestamp(at_ms / 1000.0, tz=datetime.UTC)
    offset = moment.astimezone(zone).utcoffset() or datetime.timedelta()
    return offset.total_seconds() * 1000.0


_PARSE_ERRORS = {0: "INVALID_COUNTRY_CODE", 1: "NOT_A_NUMBER", 2: "TOO_SHORT_AFTER_IDD", 3: "TOO_SHORT_NSN",
                 4: "TOO_LONG_NSN"}
_NUMBER_TYPES = {value: name for name, value in vars(phonenumbers.PhoneNumberType).items()
                 if name.isupper() and isinstance(value, int)}


def _phone_info(number: str, country: str | None = None) -> dict[str, Any]:
    """PhoneNumber.getInfo: libphonenumber's view of a number (E.164 unless `country` is given)."""
    try:
        parsed = phonenumbers.parse(str(number), country.upper() if country else None)
    except phonenumbers.NumberParseException as exc:
        return {"error": _PARSE_ERRORS.get(exc.error_type, "NOT_A_NUMBER"), "numberType": "UNKNOWN",
                "isPossibleNumber": False, "isValidNumber": False, "isValidNumberForRegion": False}
    region = phonenumbers.region_code_for_number(parsed) or ""
    return {
        "numberType": _NUMBER_TYPES.get(phonenumbers.number_type(parsed), "UNKNOWN"),
        "region": region,
        "location": geocoder.description_for_number(parsed, "en"),
        "isPossibleNumber": phonenumbers.is_possible_number(parsed),
        "isValidNumber": phonenumbers.is_valid_number(parsed),
        "isValidNumberForRegion": phonenumbers.is_valid_number_for_region(parsed, (country or region).upper()),
        "number": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
    }


PURE: dict[str, Callable[..., Any]] = {
    "digest": _digest,
    "hmac_sha256": _hmac_sha256,
    "encode": _encode,
    "decode": _decode,
    "base64_encode": _base64_encode,
    "base64_decode": _base64_decode,
    "uuid": lambda: str(uuid.uuid4()),
    "tzoffset": _tzoffset,
    "phoneInfo": _phone_info,
}


def make_host(heap_left: Callable[[], int]) -> Callable[[str, str], str]:
    """The `__voxHost(op, argsJson)` function of one context."""
    ops = dict(PURE, heapLeft=heap_left)

    def host(op: str, args_json: str) -> str:
        try:
            args = json.loads(args_json)
            if op == "symbols":  # already JSON (cached): do not encode it twice
                return '{"value":' + _symbols(*args) + "}"
            return json.dumps({"value": ops[op](*args)})
        except Refused as exc:
            return json.dumps({"error": str(exc)})
        except (KeyError, TypeError, ValueError) as exc:
            return json.dumps({"error": f"{op}: bad arguments ({exc})", "type": "TypeError"})
        except Exception:
            log.exception("host function %s failed", op)
            return json.dumps({"error": f"{op}: internal error"})

    return host
