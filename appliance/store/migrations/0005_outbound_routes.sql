-- Outbound routes: how VoxEngine.callPSTN reaches a line. Tried by position; the first enabled route whose
-- pattern matches the whole dialled number takes the call. A route names its line, never its technology.
CREATE TABLE outbound_routes (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pattern TEXT NOT NULL,                          -- a Python regex the dialled number must fullmatch
    line TEXT NOT NULL,                             -- the name of the line the call goes out through
    strip_digits INTEGER NOT NULL DEFAULT 0,        -- leading characters removed from the number...
    prepend TEXT NOT NULL DEFAULT '',               -- ...and what is put in front of the rest
    callerid_policy TEXT NOT NULL DEFAULT 'pass',   -- pass (the scenario's), fixed (callerid_value), anonymous
    callerid_value TEXT NOT NULL DEFAULT '',
    international INTEGER NOT NULL DEFAULT 0,       -- may numbers starting with + or 00 use it (toll fraud guard)
    max_concurrent INTEGER NOT NULL DEFAULT 0,      -- calls at once through the route; 0: no limit
    position INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL
);
