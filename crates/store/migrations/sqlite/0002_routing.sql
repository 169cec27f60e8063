-- Call routing: targets, routing plans (campaigns point at one), and the record of every call
-- with each of its attempts.

CREATE TABLE targets (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    destination        TEXT    NOT NULL,
    languages          TEXT    NOT NULL,
    regions            TEXT    NOT NULL,
    hours              TEXT,
    cap_concurrent     INTEGER,
    cap_hourly         INTEGER,
    cap_daily          INTEGER,
    cap_monthly        INTEGER,
    priority           INTEGER NOT NULL,
    weight             INTEGER NOT NULL,
    ring_timeout_secs  INTEGER,
    enabled            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX targets_account ON targets(account_id, id);

CREATE TABLE routing_plans (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name               TEXT    NOT NULL,
    targets            TEXT    NOT NULL,
    strategy           TEXT    NOT NULL,
    filters            TEXT    NOT NULL,
    duplicate_hours    INTEGER,
    duplicate_action   TEXT,
    ring_timeout_secs  INTEGER NOT NULL,
    reroute_on         TEXT    NOT NULL,
    max_attempts       INTEGER NOT NULL,
    overflow_target_id INTEGER REFERENCES targets(id) ON DELETE SET NULL,
    no_target_status   INTEGER NOT NULL,
    no_target_reason   TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX routing_plans_account ON routing_plans(account_id, id);

ALTER TABLE campaigns ADD COLUMN routing_plan_id INTEGER REFERENCES routing_plans(id) ON DELETE SET NULL;

-- Calls keep their history when campaigns, targets or sessions go: those references are plain
-- columns, not foreign keys.
CREATE TABLE calls (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id      INTEGER,
    routing_plan_id  INTEGER,
    tracking_number  TEXT    NOT NULL,
    caller           TEXT    NOT NULL,
    session_id       TEXT,
    channel          TEXT    NOT NULL,
    external_id      TEXT    NOT NULL,
    outcome          TEXT    NOT NULL,
    reason           TEXT,
    hung_up_by       TEXT,
    started_at       INTEGER NOT NULL,
    answered_at      INTEGER,
    ended_at         INTEGER
);
CREATE INDEX calls_account ON calls(account_id, id);
CREATE INDEX calls_account_started ON calls(account_id, started_at);
CREATE INDEX calls_in_progress ON calls(outcome) WHERE outcome = 'in_progress';

CREATE TABLE call_attempts (
    call_id      INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    target_id    INTEGER,
    destination  TEXT    NOT NULL,
    outcome      TEXT,
    sip_status   INTEGER,
    started_at   INTEGER NOT NULL,
    answered_at  INTEGER,
    ended_at     INTEGER,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX call_attempts_target ON call_attempts(target_id);
