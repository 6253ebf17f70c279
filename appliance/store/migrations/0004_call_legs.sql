-- Call history below the session: one row per call leg, one per recording (Voximplant's CallInfoType
-- and RecordType in GetCallHistory). Written when the leg or the recording ends.
CREATE TABLE call_legs (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    call_id TEXT NOT NULL,            -- the id scripts know the call by
    incoming INTEGER NOT NULL,
    kind TEXT NOT NULL,               -- VoxEngine's clientType: sip, user, pstn, conference
    line TEXT NOT NULL DEFAULT '',    -- the line it came in on or went out through
    caller TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL DEFAULT '',
    start_date REAL NOT NULL,
    answer_date REAL,
    end_date REAL NOT NULL,
    duration INTEGER NOT NULL,        -- seconds connected
    code INTEGER NOT NULL,            -- SIP-style cause: 200 normal clearing, 486 busy, 408 no answer...
    reason TEXT NOT NULL DEFAULT '',
    codec TEXT NOT NULL DEFAULT '',
    lost_percent REAL,                -- what we received, from our RTP statistics
    jitter_ms REAL,
    remote_lost_percent REAL,         -- what the far end received, from its RTCP reports
    remote_jitter_ms REAL
);
CREATE INDEX call_legs_session ON call_legs (session_id);

CREATE TABLE call_records (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,
    call_id TEXT,                     -- NULL for a Recorder that was not a call recording
    url TEXT NOT NULL,
    file_name TEXT NOT NULL,
    start_date REAL NOT NULL,
    duration REAL NOT NULL
);
CREATE INDEX call_records_session ON call_records (session_id);
