-- SIP lines: local users (phones that register to the box) and trunks (an ITSP, a PBX, another box).
-- Passwords are kept as given: digest authentication needs them (or a per-realm hash of them).
CREATE TABLE sip_users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    application_id INTEGER REFERENCES applications(id) ON DELETE SET NULL,
    created REAL NOT NULL
);

CREATE TABLE sip_trunks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    port INTEGER,
    transport TEXT NOT NULL DEFAULT 'udp',
    username TEXT NOT NULL DEFAULT '',
    password TEXT NOT NULL DEFAULT '',
    register INTEGER NOT NULL DEFAULT 0,
    application_id INTEGER REFERENCES applications(id) ON DELETE SET NULL,
    created REAL NOT NULL
);
