-- `calls_in_progress` indexed the ringing calls by outcome, and nothing needs it: what looks for
-- open calls (a gone node's calls, the days not yet settled) goes by `calls_open`, which holds
-- the connected ones too, and then by id; a listing filtered by outcome goes by account. Every
-- call entered it when it started and left it when it was answered or ended: two index writes
-- per call for nothing.
DROP INDEX calls_in_progress;
