-- The management API (issue 7).

-- Keys get a public id (Voximplant's key_id, the JWT "kid") and, for service accounts, the RSA public
-- key that checks their tokens. Secret keys keep only their SHA-256 hash; service accounts no secret.
ALTER TABLE api_keys ADD COLUMN key_id TEXT;
ALTER TABLE api_keys ADD COLUMN public_key TEXT;
UPDATE api_keys SET key_id = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX api_keys_key_id ON api_keys (key_id);

-- Every change made through the API (and every refused attempt to make one), with who and from where.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    requested REAL NOT NULL,
    key_id TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    cmd TEXT NOT NULL,
    parameters TEXT NOT NULL DEFAULT '{}',   -- JSON; passwords, keys and secret values replaced by '***'
    error_code INTEGER NOT NULL DEFAULT 0,   -- 0: done; else the error answered
    error_msg TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_requested ON audit_log (requested);

-- A session's log stays readable after the session by an unguessable link (Voximplant's log_file_url).
ALTER TABLE call_sessions ADD COLUMN log_secret TEXT NOT NULL DEFAULT '';

-- Voximplant's user fields and rule binding of SIP registrations.
ALTER TABLE sip_users ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sip_users ADD COLUMN custom_data TEXT NOT NULL DEFAULT '';
ALTER TABLE sip_users ADD COLUMN modified REAL;
ALTER TABLE sip_trunks ADD COLUMN rule_id INTEGER REFERENCES rules(id) ON DELETE SET NULL;
ALTER TABLE sip_trunks ADD COLUMN auth_user TEXT NOT NULL DEFAULT '';

-- When a secret last changed (GetSecrets' modified).
ALTER TABLE secrets ADD COLUMN modified REAL;

-- A scenario made for one application (AddScenario with application_id) lists under it; NULL: shared.
ALTER TABLE scenarios ADD COLUMN application_id INTEGER REFERENCES applications(id) ON DELETE SET NULL;
