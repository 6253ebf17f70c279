"""Keys of the management API: secret keys (Voximplant's `api_key`) and service accounts (RS256 JWTs).

A secret key is 256 random bits shown once; only its SHA-256 hash is kept (a fast hash is enough:
nothing can be guessed from a leaked hash of a random key). A service account is an RSA key pair: the
private key goes into the JSON file handed to the user, the box keeps the public key only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.store.db import DEFAULT_ACCOUNT_ID, Database, NotFound

RSA_BITS = 2048


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    description: str
    created: float
    last_used: float | None
    service_account: bool


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, description: str = "") -> tuple[str, str]:
        """A new secret key: (key_id, key), the key returned once; only its hash is stored."""
        key, key_id = secrets.token_urlsafe(32), str(uuid.uuid4())
        self.db.execute(
            "INSERT INTO api_keys (key_hash, key_id, description, created) VALUES (?, ?, ?, ?)",
            (_hash(key), key_id, description, time.time()),
        )
        return key_id, key

    def create_service_account(self, description: str = "") -> dict[str, object]:
        """A new service account: the credentials JSON as Voximplant's clients read it (account_id, key_id,
        private_key). The private key is returned once and not kept."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        key_id = str(uuid.uuid4())
        # key_hash is unique and not null: a service account has no secret, so it gets an unguessable filler.
        self.db.execute(
            "INSERT INTO api_keys (key_hash, key_id, public_key, description, created) VALUES (?, ?, ?, ?, ?)",
            (_hash(secrets.token_hex(32)), key_id, public_pem, description, time.time()),
        )
        private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode("ascii")
        return {"account_id": DEFAULT_ACCOUNT_ID, "key_id": key_id, "private_key": private_pem}

    def check(self, key: str) -> str | None:
        """The key_id of a valid secret key (its last use noted), else None."""
        rows = self.db.query("SELECT id, key_id FROM api_keys WHERE key_hash = ? AND public_key IS NULL",
                             (_hash(key),))
        if not rows:
            return None
        self.db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (time.time(), rows[0]["id"]))
        return str(rows[0]["key_id"])

    def public_key(self, key_id: str) -> str | None:
        """The PEM public key of a service account (its last use noted), else None."""
        rows = self.db.query("SELECT id, public_key FROM api_keys WHERE key_id = ? AND public_key IS NOT NULL",
                             (key_id,))
        if not rows:
            return None
        self.db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (time.time(), rows[0]["id"]))
        return str(rows[0]["public_key"])

    def list(self) -> list[KeyInfo]:
        rows = self.db.query("SELECT key_id, description, created, last_used, public_key FROM api_keys ORDER BY id")
        return [KeyInfo(r["key_id"], r["description"], r["created"], r["last_used"], r["public_key"] is not None)
                for r in rows]

    def delete(self, key_id: str) -> None:
        if not self.db.execute("DELETE FROM api_keys WHERE key_id = ?", (key_id,)).rowcount:
            raise NotFound(f"no API key {key_id!r}")


def credentials_json(credentials: dict[str, object]) -> str:
    return json.dumps(credentials, indent=2) + "\n"
