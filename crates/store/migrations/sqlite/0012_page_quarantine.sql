-- A quarantine may cover only some pages of a campaign: those whose scan URL is `url_pattern`,
-- or starts with it when it ends in `*`. The campaign's other pages keep getting numbers. A
-- campaign has at most one active whole-campaign quarantine and one per active pattern.

ALTER TABLE quarantines ADD COLUMN url_pattern TEXT;

DROP INDEX quarantines_active_campaign;
CREATE UNIQUE INDEX quarantines_active_campaign ON quarantines(campaign_id)
    WHERE status = 'active' AND campaign_id IS NOT NULL AND url_pattern IS NULL;
CREATE UNIQUE INDEX quarantines_active_page ON quarantines(campaign_id, url_pattern)
    WHERE status = 'active' AND url_pattern IS NOT NULL;

DROP TRIGGER campaign_quarantined;
CREATE TRIGGER campaign_quarantined AFTER INSERT ON quarantines
WHEN NEW.campaign_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO webhook_deliveries
        (account_id, webhook_id, event_id, event_type, data, created_at, next_attempt_at)
    SELECT w.account_id, w.id, 'evt_quarantine_' || NEW.id, 'campaign.quarantined',
        json_object('quarantine_id', NEW.id, 'campaign_id', NEW.campaign_id,
            'scan_id', NEW.scan_id, 'reason', NEW.reason, 'url_pattern', NEW.url_pattern,
            'page_url', (SELECT url FROM page_scans WHERE id = NEW.scan_id),
            'quarantined_at', strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at / 1000, 'unixepoch')),
        NEW.created_at, NEW.created_at
    FROM webhooks w
    WHERE w.account_id = NEW.account_id AND w.enabled
      AND instr(w.events, ',campaign.quarantined,') > 0;
END;
