-- The web panel (issue 8): its users (Voximplant's "admin users", with one role each) and their
-- signed-in sessions. Only an argon2 hash of a password and a SHA-256 hash of a session token are kept.
CREATE TABLE admin_users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'read-only')),
    active INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    modified REAL NOT NULL
);

CREATE TABLE panel_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX panel_sessions_user ON panel_sessions (user_id);
