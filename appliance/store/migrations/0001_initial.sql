-- The account the box represents: one row. Voximplant clients send its id as account_id.
CREATE TABLE account (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL
);

CREATE TABLE applications (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    secure_record_storage INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    modified REAL NOT NULL
);

-- Scenario names are unique box-wide, as Voximplant's are account-wide.
CREATE TABLE scenarios (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    script TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL
);

CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    application_id INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    pattern TEXT NOT NULL DEFAULT '.*',
    pattern_exclude TEXT NOT NULL DEFAULT '',
    video_conference INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL,
    UNIQUE (application_id, name)
);

CREATE TABLE rule_scenarios (
    rule_id INTEGER NOT NULL REFERENCES rules(id) ON DELETE CASCADE,
    scenario_id INTEGER NOT NULL REFERENCES scenarios(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (rule_id, scenario_id)
);

-- ApplicationStorage: per application, with an absolute expiry (Unix seconds).
CREATE TABLE kv (
    application_id INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (application_id, key)
);
CREATE INDEX kv_expiry ON kv (expires_at);

CREATE TABLE secrets (
    application_id INTEGER NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    PRIMARY KEY (application_id, name)
);

-- API keys are stored as SHA-256 hashes only; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    last_used REAL
);

-- One row per session (Voximplant's call session history); legs come with the call issues.
CREATE TABLE call_sessions (
    id INTEGER PRIMARY KEY,
    application_id INTEGER,
    application_name TEXT NOT NULL DEFAULT '',
    rule_id INTEGER,
    rule_name TEXT NOT NULL DEFAULT '',
    start_date REAL NOT NULL,
    end_date REAL,
    finish_reason TEXT,
    custom_data TEXT NOT NULL DEFAULT '',
    initiator TEXT NOT NULL DEFAULT '',
    log_file TEXT NOT NULL DEFAULT ''
);
CREATE INDEX call_sessions_start ON call_sessions (start_date);
