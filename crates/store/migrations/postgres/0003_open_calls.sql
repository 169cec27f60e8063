-- Calls not yet ended: ringing ones (in_progress) and connected ones (answered, no end yet).
-- What a gone node left behind and what keeps a day from being rolled up are both these.
CREATE INDEX calls_open ON calls(started_at) WHERE ended_at IS NULL;
