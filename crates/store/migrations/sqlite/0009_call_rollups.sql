-- Report rollups: the calls of each settled UTC day summed per account and group, so that a
-- report over a long range reads a few rows per day instead of every call. Grouping `time`
-- keeps 15-minute granules (every time zone's offset is a whole number of quarter hours, so
-- each granule falls in one local hour and day); the other groupings keep whole UTC days.
-- `call_rollup_state.rolled_until` (a UTC midnight, ms) is how far days are rolled: calls
-- started before it are in the rollups, except on the days listed in `call_rollup_dirty`, which
-- a call written after its day was rolled marks (reports read those days from the calls, and
-- the roller builds them again).

CREATE TABLE call_rollups (
    account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    grouping          TEXT    NOT NULL,
    start             INTEGER NOT NULL,
    key               TEXT,
    calls             INTEGER NOT NULL,
    answered          INTEGER NOT NULL,
    unique_calls      INTEGER NOT NULL,
    talk_ms           INTEGER NOT NULL,
    by_caller         INTEGER NOT NULL,
    by_target         INTEGER NOT NULL,
    by_system         INTEGER NOT NULL,
    attempts          INTEGER NOT NULL,
    unattributed      INTEGER NOT NULL,
    conversions       INTEGER NOT NULL,
    conversion_value  REAL    NOT NULL
);
CREATE INDEX call_rollups_lookup ON call_rollups(account_id, grouping, start);
CREATE INDEX call_rollups_start ON call_rollups(start);

CREATE TABLE call_rollup_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_until  INTEGER NOT NULL
);
INSERT INTO call_rollup_state (id, rolled_until) VALUES (1, 0);

CREATE TABLE call_rollup_dirty (
    account_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) WITHOUT ROWID;

CREATE TRIGGER calls_rollup_insert AFTER INSERT ON calls
WHEN NEW.started_at < (SELECT rolled_until FROM call_rollup_state)
BEGIN
    INSERT OR IGNORE INTO call_rollup_dirty (account_id, day)
    VALUES (NEW.account_id, NEW.started_at - NEW.started_at % 86400000);
END;

CREATE TRIGGER calls_rollup_update AFTER UPDATE ON calls
WHEN OLD.started_at < (SELECT rolled_until FROM call_rollup_state)
BEGIN
    INSERT OR IGNORE INTO call_rollup_dirty (account_id, day)
    VALUES (OLD.account_id, OLD.started_at - OLD.started_at % 86400000);
END;

CREATE TRIGGER calls_rollup_delete AFTER DELETE ON calls
WHEN OLD.started_at < (SELECT rolled_until FROM call_rollup_state)
BEGIN
    INSERT OR IGNORE INTO call_rollup_dirty (account_id, day)
    VALUES (OLD.account_id, OLD.started_at - OLD.started_at % 86400000);
END;
