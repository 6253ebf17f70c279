-- Toll-fraud guards of outbound routes (Yeastar's "outbound call security"): when a route may be used,
-- how long its calls may last, and how many calls it may put through in a rolling hour.
ALTER TABLE outbound_routes ADD COLUMN hours TEXT NOT NULL DEFAULT '';                -- '': always; else e.g. 'mon-fri 08:00-20:00, sat 09:00-13:00' (box's local time)
ALTER TABLE outbound_routes ADD COLUMN max_duration INTEGER NOT NULL DEFAULT 0;       -- seconds from connect after which the box hangs up; 0: none
ALTER TABLE outbound_routes ADD COLUMN max_calls_per_hour INTEGER NOT NULL DEFAULT 0; -- calls put through in any 60 minutes; 0: no limit
