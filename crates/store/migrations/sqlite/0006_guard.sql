-- The Guard inside the service: how each domain was proved and when it was last checked, page
-- scans (a durable queue and their verdicts), quarantines, abuse reports, and the audit of every
-- step. A visitor session opened on a page URL its campaign has not been seen on queues that
-- URL for a scan, inside the session batch's own statement (no extra round trip on the DNI
-- path).

ALTER TABLE domains ADD COLUMN method TEXT;
ALTER TABLE domains ADD COLUMN checked_at INTEGER;
ALTER TABLE domains ADD COLUMN failing_since INTEGER;

-- One row per (campaign, exact page URL) and per reported URL: the queue and the verdict.
-- account_id and campaign_id are NULL for a reported URL no campaign was seen on.
CREATE TABLE page_scans (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id    INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
    url            TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'queued',
    attempts       INTEGER NOT NULL DEFAULT 0,
    due_at         INTEGER NOT NULL,
    verdict        TEXT,
    score          REAL,
    rule           TEXT,
    findings       TEXT,
    error          TEXT,
    created_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    overridden_at  INTEGER,
    override_note  TEXT
);
CREATE UNIQUE INDEX page_scans_campaign_url ON page_scans(campaign_id, url)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX page_scans_account ON page_scans(account_id, id);
CREATE INDEX page_scans_due ON page_scans(due_at) WHERE status = 'queued';
CREATE INDEX page_scans_url ON page_scans(url);

CREATE TRIGGER page_scan_queued AFTER INSERT ON visitor_sessions
BEGIN
    INSERT OR IGNORE INTO page_scans (account_id, campaign_id, url, source, due_at, created_at)
    VALUES (NEW.account_id, NEW.campaign_id, NEW.landing_url, 'dni', NEW.first_seen,
            NEW.first_seen);
END;

CREATE TABLE quarantines (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id  INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
    number_id    INTEGER REFERENCES tracking_numbers(id) ON DELETE CASCADE,
    scan_id      INTEGER REFERENCES page_scans(id) ON DELETE SET NULL,
    reason       TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'active',
    created_at   INTEGER NOT NULL,
    lifted_at    INTEGER,
    lift_note    TEXT
);
CREATE INDEX quarantines_account ON quarantines(account_id, id);
CREATE UNIQUE INDEX quarantines_active_campaign ON quarantines(campaign_id)
    WHERE status = 'active' AND campaign_id IS NOT NULL;
CREATE UNIQUE INDEX quarantines_active_number ON quarantines(number_id)
    WHERE status = 'active' AND number_id IS NOT NULL;

CREATE TRIGGER campaign_quarantined AFTER INSERT ON quarantines
WHEN NEW.campaign_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_quarantine_' || NEW.id, 'campaign.quarantined',
        json_object('quarantine_id', NEW.id, 'campaign_id', NEW.campaign_id,
            'scan_id', NEW.scan_id, 'reason', NEW.reason,
            'page_url', (SELECT url FROM page_scans WHERE id = NEW.scan_id),
            'quarantined_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at / 1000, 'unixepoch')),
        NEW.created_at, NEW.created_at
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',campaign.quarantined,') > 0;
END;

-- Why a call is flagged: it came on a number first shown on a page scanned as a scam.
ALTER TABLE calls ADD COLUMN guard_flag TEXT;

CREATE TRIGGER call_flagged AFTER INSERT ON calls
WHEN NEW.session_id IS NOT NULL
BEGIN
    UPDATE calls SET guard_flag = 'scam_page'
    WHERE id = NEW.id AND EXISTS (
        SELECT 1 FROM visitor_sessions s
        JOIN page_scans p ON p.campaign_id = s.campaign_id AND p.url = s.landing_url
        WHERE s.id = NEW.session_id AND p.verdict = 'scam' AND p.overridden_at IS NULL);
END;

CREATE TABLE abuse_reports (
    id           INTEGER PRIMARY KEY,
    reference    TEXT    NOT NULL UNIQUE,
    account_id   INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    number_e164  TEXT,
    number_id    INTEGER REFERENCES tracking_numbers(id) ON DELETE SET NULL,
    page_url     TEXT,
    description  TEXT    NOT NULL,
    -- SHA-256 of the reporter's address: enough to count independent reporters, no address kept.
    reporter     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX abuse_reports_account ON abuse_reports(account_id, id);
CREATE INDEX abuse_reports_number ON abuse_reports(number_id, created_at);

CREATE TABLE guard_audit (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    detail      TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX guard_audit_account ON guard_audit(account_id, id);
