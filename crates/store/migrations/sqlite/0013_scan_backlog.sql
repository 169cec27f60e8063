-- The session batch asks how many scans each campaign has waiting before it queues more (a
-- campaign's backlog is bounded); this keeps that count to the waiting rows.
CREATE INDEX page_scans_queued_campaign ON page_scans(campaign_id) WHERE status = 'queued';
