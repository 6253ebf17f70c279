-- The SIP Call-ID of a call leg's dialog ('' for legs that are not SIP), so the SIP trace of a session
-- that has ended can still be found (GetSipTrace).
ALTER TABLE call_legs ADD COLUMN sip_call_id TEXT NOT NULL DEFAULT '';
