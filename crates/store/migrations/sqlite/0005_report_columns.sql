-- What reports group and count by, kept on each call row so a report is one range scan of the
-- calls table (ordered by time through its id) with no join: the attribution of the visitor
-- session (source, medium, campaign, term, landing page without its query string), the number
-- of attempts, the target that answered (else the last one tried), and when the same caller
-- last called the account before (a caller is unique in a period when that is before it).
-- Triggers keep them, whoever writes calls and attempts.

ALTER TABLE calls ADD COLUMN prev_call_at INTEGER;
ALTER TABLE calls ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN target_id INTEGER;
ALTER TABLE calls ADD COLUMN utm_source TEXT;
ALTER TABLE calls ADD COLUMN utm_medium TEXT;
ALTER TABLE calls ADD COLUMN utm_campaign TEXT;
ALTER TABLE calls ADD COLUMN utm_term TEXT;
ALTER TABLE calls ADD COLUMN landing_page TEXT;

-- `calls_account_caller` (migration 4) finds a caller's previous call.

CREATE TRIGGER calls_report_on_insert AFTER INSERT ON calls
BEGIN
    UPDATE calls SET prev_call_at = (
        SELECT MAX(p.started_at) FROM calls p
        WHERE p.account_id = NEW.account_id AND p.caller = NEW.caller
          AND p.started_at < NEW.started_at)
    WHERE id = NEW.id;
    -- A call recorded out of order is the previous call of the caller's next one.
    UPDATE calls SET prev_call_at = NEW.started_at
    WHERE id = (SELECT n.id FROM calls n
                WHERE n.account_id = NEW.account_id AND n.caller = NEW.caller
                  AND n.started_at > NEW.started_at
                ORDER BY n.started_at LIMIT 1)
      AND (prev_call_at IS NULL OR prev_call_at < NEW.started_at);
    UPDATE calls SET (utm_source, utm_medium, utm_campaign, utm_term, landing_page) = (
        SELECT s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term,
               CASE WHEN instr(s.landing_url, '?') > 0
                    THEN substr(s.landing_url, 1, instr(s.landing_url, '?') - 1)
                    ELSE s.landing_url END
        FROM visitor_sessions s WHERE s.id = NEW.session_id)
    WHERE id = NEW.id AND NEW.session_id IS NOT NULL;
END;

CREATE TRIGGER calls_report_on_attribution AFTER UPDATE OF session_id ON calls
WHEN NEW.session_id IS NOT OLD.session_id
BEGIN
    UPDATE calls SET (utm_source, utm_medium, utm_campaign, utm_term, landing_page) = (
        SELECT s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term,
               CASE WHEN instr(s.landing_url, '?') > 0
                    THEN substr(s.landing_url, 1, instr(s.landing_url, '?') - 1)
                    ELSE s.landing_url END
        FROM visitor_sessions s WHERE s.id = NEW.session_id)
    WHERE id = NEW.id;
END;

CREATE TRIGGER call_attempts_report_on_insert AFTER INSERT ON call_attempts
BEGIN
    UPDATE calls SET
        attempts = (SELECT COUNT(*) FROM call_attempts a WHERE a.call_id = NEW.call_id),
        target_id = (SELECT a.target_id FROM call_attempts a WHERE a.call_id = NEW.call_id
                     ORDER BY a.answered_at IS NULL, a.seq DESC LIMIT 1)
    WHERE id = NEW.call_id;
END;

CREATE TRIGGER call_attempts_report_on_answer AFTER UPDATE OF answered_at ON call_attempts
WHEN NEW.answered_at IS NOT OLD.answered_at
BEGIN
    UPDATE calls SET
        target_id = (SELECT a.target_id FROM call_attempts a WHERE a.call_id = NEW.call_id
                     ORDER BY a.answered_at IS NULL, a.seq DESC LIMIT 1)
    WHERE id = NEW.call_id;
END;

-- Calls recorded before this migration.
UPDATE calls SET (utm_source, utm_medium, utm_campaign, utm_term, landing_page) = (
    SELECT s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term,
           CASE WHEN instr(s.landing_url, '?') > 0
                THEN substr(s.landing_url, 1, instr(s.landing_url, '?') - 1)
                ELSE s.landing_url END
    FROM visitor_sessions s WHERE s.id = calls.session_id)
WHERE session_id IS NOT NULL;
UPDATE calls SET
    attempts = (SELECT COUNT(*) FROM call_attempts a WHERE a.call_id = calls.id),
    target_id = (SELECT a.target_id FROM call_attempts a WHERE a.call_id = calls.id
                 ORDER BY a.answered_at IS NULL, a.seq DESC LIMIT 1),
    prev_call_at = (SELECT MAX(p.started_at) FROM calls p
                    WHERE p.account_id = calls.account_id AND p.caller = calls.caller
                      AND p.started_at < calls.started_at);
