-- Event webhooks: the account's endpoints, and the outbox of their deliveries, written by
-- triggers in the same transaction as the state change each event describes (a visitor session
-- inserted, a call inserted, an attempt added, a call's outcome leaving in_progress). The
-- conversion a business reports for a call lives on the call.

CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    url         TEXT    NOT NULL,
    -- The event types it wants, comma-separated with a comma at each end: ',call.started,'.
    events      TEXT    NOT NULL,
    enabled     INTEGER NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_account ON webhooks(account_id, id);

-- One row per (event, subscribed webhook). The event's data is a snapshot taken when it
-- happened; the delivery worker wraps it in the envelope it signs.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    data             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
    WHERE status = 'pending';

ALTER TABLE calls ADD COLUMN conversion_value REAL;
ALTER TABLE calls ADD COLUMN conversion_currency TEXT;
ALTER TABLE calls ADD COLUMN converted_at INTEGER;
CREATE INDEX calls_account_caller ON calls(account_id, caller, started_at);

CREATE TRIGGER session_created AFTER INSERT ON visitor_sessions
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_' || NEW.id, 'session.created',
        json_object(
            'session_id', NEW.id, 'campaign_id', NEW.campaign_id, 'visitor', NEW.visitor,
            'number', NEW.number_e164, 'attributed', json(CASE WHEN NEW.attributed THEN 'true' ELSE 'false' END),
            'landing_url', NEW.landing_url, 'referrer', NEW.referrer,
            'utm_source', NEW.utm_source, 'utm_medium', NEW.utm_medium,
            'utm_campaign', NEW.utm_campaign, 'utm_term', NEW.utm_term,
            'utm_content', NEW.utm_content, 'gclid', NEW.gclid, 'fbclid', NEW.fbclid,
            'msclkid', NEW.msclkid, 'country', NEW.country, 'language', NEW.language,
            'lease_expires_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.lease_expires_at / 1000, 'unixepoch')),
        NEW.first_seen, NEW.first_seen
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',session.created,') > 0;
END;

CREATE TRIGGER call_started AFTER INSERT ON calls
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_call_' || NEW.id || '_started', 'call.started',
        json_object(
            'call_id', NEW.id, 'campaign_id', NEW.campaign_id,
            'tracking_number', NEW.tracking_number, 'caller', NEW.caller,
            'channel', NEW.channel, 'session_id', NEW.session_id,
            'started_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.started_at / 1000, 'unixepoch')),
        NEW.started_at, NEW.started_at
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',call.started,') > 0;
END;

CREATE TRIGGER call_routed AFTER INSERT ON call_attempts
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_call_' || NEW.call_id || '_routed_' || NEW.seq,
        'call.routed',
        json_object(
            'call_id', c.id, 'campaign_id', c.campaign_id,
            'tracking_number', c.tracking_number, 'caller', c.caller,
            'session_id', c.session_id, 'attempt', NEW.seq, 'target_id', NEW.target_id,
            'destination', NEW.destination,
            'routed_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.started_at / 1000, 'unixepoch')),
        NEW.started_at, NEW.started_at
    FROM calls c JOIN webhooks w ON w.account_id = c.account_id
    WHERE c.id = NEW.call_id AND w.enabled AND instr(w.events, ',call.routed,') > 0;
END;

-- A call written once already finished (refused at once) is finished from its first record.
CREATE TRIGGER call_finished_at_once AFTER INSERT ON calls
WHEN NEW.outcome <> 'in_progress'
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_call_' || NEW.id || '_finished', 'call.finished',
        json_object(
            'call_id', NEW.id, 'campaign_id', NEW.campaign_id,
            'tracking_number', NEW.tracking_number, 'caller', NEW.caller,
            'channel', NEW.channel, 'session_id', NEW.session_id, 'outcome', NEW.outcome,
            'reason', NEW.reason, 'hung_up_by', NEW.hung_up_by,
            'started_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.started_at / 1000, 'unixepoch'),
            'answered_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.answered_at / 1000, 'unixepoch'),
            'ended_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ended_at / 1000, 'unixepoch'),
            'talk_secs', (NEW.ended_at - NEW.answered_at + 500) / 1000),
        coalesce(NEW.ended_at, NEW.started_at), coalesce(NEW.ended_at, NEW.started_at)
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',call.finished,') > 0;
END;

CREATE TRIGGER call_finished AFTER UPDATE OF outcome ON calls
WHEN OLD.outcome = 'in_progress' AND NEW.outcome <> 'in_progress'
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_call_' || NEW.id || '_finished', 'call.finished',
        json_object(
            'call_id', NEW.id, 'campaign_id', NEW.campaign_id,
            'tracking_number', NEW.tracking_number, 'caller', NEW.caller,
            'channel', NEW.channel, 'session_id', NEW.session_id, 'outcome', NEW.outcome,
            'reason', NEW.reason, 'hung_up_by', NEW.hung_up_by,
            'started_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.started_at / 1000, 'unixepoch'),
            'answered_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.answered_at / 1000, 'unixepoch'),
            'ended_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ended_at / 1000, 'unixepoch'),
            'talk_secs', (NEW.ended_at - NEW.answered_at + 500) / 1000),
        coalesce(NEW.ended_at, NEW.started_at), coalesce(NEW.ended_at, NEW.started_at)
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',call.finished,') > 0;
END;
