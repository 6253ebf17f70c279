"""Who may call the management API, as Voximplant's clients authenticate:

- `account_id` + `api_key` parameters, or `Authorization: Bearer <api_key>` (secret keys);
- `Authorization: Bearer <JWT>`: a service account's short-lived RS256 token, header `kid` = key_id,
  claims `iss` = account_id, `iat`, `exp` (at most an hour after `iat`), as the official clients sign it.
"""

from __future__ import annotations

import math
import time

import jwt

from appliance.store.apikeys import ApiKeys
from appliance.store.db import DEFAULT_ACCOUNT_ID

TOKEN_LIFETIME_MAX = 3600  # seconds between iat and exp, as Voximplant allows
# Tolerated clock difference between the box and the client: a board without a real-time clock may be
# a little off until NTP catches up; more than this and tokens are refused with both clocks named.
CLOCK_SKEW = 120


class AuthError(Exception):
    """The request is not authenticated; the message says why without revealing key details."""


def _bearer(header: str) -> str | None:
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def authenticate(keys: ApiKeys, params: dict[str, str], authorization: str) -> str:
    """The key_id the request acts with (runs on the store's thread), or AuthError."""
    token = _bearer(authorization)
    if token is not None and token.count(".") == 2:
        return _check_jwt(keys, token)
    if token is None:
        if params.get("account_id", "").strip() != str(DEFAULT_ACCOUNT_ID):
            if "api_key" in params:
                raise AuthError("Authorization failed: wrong account_id")
            raise AuthError("Authorization failed: give account_id and api_key, or a Bearer key or token")
        token = params.get("api_key") or ""
    key_id = keys.check(token) if token else None
    if key_id is None:
        raise AuthError("Authorization failed: unknown API key")
    return key_id


def _check_jwt(keys: ApiKeys, token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise AuthError("Authorization failed: the Bearer token is not a JWT") from None
    key_id = header.get("kid")
    if header.get("alg") != "RS256" or not isinstance(key_id, str):
        raise AuthError("Authorization failed: the token must be RS256 with the key_id as 'kid'")
    public_key = keys.public_key(key_id)
    if public_key is None:
        raise AuthError("Authorization failed: unknown service-account key")
    try:
        claims = jwt.decode(token, public_key, algorithms=["RS256"], leeway=CLOCK_SKEW,
                            options={"require": ["iss", "iat", "exp"], "verify_iat": False})
    except jwt.ExpiredSignatureError:
        raise AuthError("Authorization failed: the token has expired (the box's clock says "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; check both clocks)") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"Authorization failed: invalid token ({exc})") from None
    if str(claims["iss"]) != str(DEFAULT_ACCOUNT_ID):
        raise AuthError("Authorization failed: the token's iss is not this box's account_id")
    iat, exp = claims["iat"], claims["exp"]
    # NaN and infinities compare false to everything: they would pass every check below.
    if not all(isinstance(t, int | float) and math.isfinite(t) for t in (iat, exp)):
        raise AuthError("Authorization failed: iat and exp must be numbers of seconds")
    if exp - iat > TOKEN_LIFETIME_MAX:
        raise AuthError(f"Authorization failed: a token may live at most {TOKEN_LIFETIME_MAX} s (exp - iat)")
    if iat > time.time() + CLOCK_SKEW:
        raise AuthError("Authorization failed: the token is issued in the future (check both clocks)")
    return key_id
