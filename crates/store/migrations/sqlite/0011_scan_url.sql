-- Pages are scanned at their URL without the ad-click and analytics parameters that differ on
-- every click (`callopt_domain::scan_url`), so a session's landing URL is its page's scan URL or
-- that URL followed by more of the query string (`?`, `&`) or a fragment (`#`): click ids come
-- last in the URLs ad platforms build. A call on a number first shown on a page found to be a
-- scam is flagged by that rule.

DROP TRIGGER call_flagged;

CREATE TRIGGER call_flagged AFTER INSERT ON calls
WHEN NEW.session_id IS NOT NULL
BEGIN
    UPDATE calls SET guard_flag = 'scam_page'
    WHERE id = NEW.id AND EXISTS (
        SELECT 1 FROM visitor_sessions s
        JOIN page_scans p ON p.campaign_id = s.campaign_id
        WHERE s.id = NEW.session_id AND p.verdict = 'scam' AND p.overridden_at IS NULL
          AND (s.landing_url = p.url
               OR (substr(s.landing_url, 1, length(p.url)) = p.url
                   AND substr(s.landing_url, length(p.url) + 1, 1) IN ('?', '&', '#'))));
END;
