-- Report benchmark data for account 1 (created by `callopt account create` before this runs):
-- 10 campaigns on one pool of 1,000 tracking numbers, 20 targets, 3,000,000 visitor sessions
-- and 1,000,000 calls (about 1.3 attempts each) over the 90 days before :now, from 300,000
-- distinct callers in several countries; 70% of calls are attributed to a session.
-- Pseudo-random but deterministic: values derive from row numbers with a multiplicative hash.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -262144;
PRAGMA temp_store = MEMORY;

CREATE TEMP TABLE params AS SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000 AS now,
    90 * 86400000 AS span;

INSERT INTO pools (id, account_id, name, created_at) SELECT 1, 1, 'bench', now FROM params;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO tracking_numbers (id, account_id, pool_id, e164, country, region, kind, languages,
    status, created_at)
SELECT i, 1, 1, '+1201555' || printf('%04d', i), 'US', NULL, 'local', 'en', 'active', now
FROM n, params;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
INSERT INTO targets (id, account_id, name, destination, languages, regions, hours,
    cap_concurrent, cap_hourly, cap_daily, cap_monthly, priority, weight, ring_timeout_secs,
    enabled, created_at, updated_at)
SELECT i, 1, 'center ' || i, '+1415555' || printf('%04d', i), '', '[]', NULL, 50, NULL, NULL,
    NULL, 1 + i % 3, 1, NULL, 1, now, now
FROM n, params;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
INSERT INTO campaigns (id, account_id, key, name, default_number, swap_numbers,
    trigger_parameter, assignment, idle_timeout_secs, domains, source_rules, pool_id,
    created_at, updated_at)
SELECT i, 1, 'cmp_bench' || i, 'campaign ' || i, '+12015550000', '[]', NULL, 'per_visitor', 1800,
    '[]', '[]', NULL, now, now
FROM n, params;

CREATE TEMP TABLE sources (k INTEGER PRIMARY KEY, source TEXT, medium TEXT);
INSERT INTO sources VALUES (0, 'google', 'cpc'), (1, 'bing', 'cpc'), (2, 'facebook', 'paid_social'),
    (3, 'google', 'organic'), (4, 'newsletter', 'email'), (5, 'yelp', 'referral'),
    (6, 'tiktok', 'paid_social'), (7, 'direct', NULL);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000)
INSERT INTO visitor_sessions (id, account_id, campaign_id, visitor, number_id, number_e164,
    attributed, landing_url, referrer, utm_source, utm_medium, utm_campaign, utm_term,
    utm_content, gclid, fbclid, msclkid, country, language, user_agent, first_seen, last_seen,
    lease_expires_at)
SELECT 'ses_' || i, 1, 1 + (h % 10), 'v' || (h % 2000000), 1 + (h % 1000),
    '+1201555' || printf('%04d', 1 + (h % 1000)), 1,
    'https://www.example.com/lp/' || (h / 7 % 50) || '?utm_source=' || s.source || '&gclid=g' || i,
    NULL, s.source, s.medium, 'spring-' || (h / 11 % 12), 'keyword ' || (h / 13 % 200), NULL,
    'g' || i, NULL, NULL, 'US', 'en', NULL, t, t + 60000, t + 1800000
FROM (SELECT i, (i * 2654435761) % 4294967296 AS h,
             (SELECT now - span FROM params) + (i * 2592) % (90 * 86400000) AS t FROM n) AS r
JOIN sources s ON s.k = r.h % 8;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO calls (id, account_id, campaign_id, routing_plan_id, tracking_number, caller,
    caller_country, session_id, channel, outcome, reason, hung_up_by, external_id, started_at,
    answered_at, ended_at)
SELECT t * 1000 + i % 1000, 1, 1 + (h % 10), NULL, '+1201555' || printf('%04d', 1 + (h % 1000)),
    CASE WHEN h % 20 = 0 THEN '+44207' || printf('%07d', h % 300000)
         WHEN h % 20 = 1 THEN '+52155' || printf('%08d', h % 300000)
         ELSE '+1' || (212 + h % 300000 % 700) || printf('%07d', h % 300000) END,
    CASE WHEN h % 20 = 0 THEN 'GB' WHEN h % 20 = 1 THEN 'MX' ELSE 'US' END,
    CASE WHEN h % 10 < 7 THEN 'ses_' || (1 + (h / 10) % 3000000) END,
    CASE WHEN h % 3 = 0 THEN 'twilio' ELSE 'sip' END,
    CASE WHEN h % 10 < 7 THEN 'answered' WHEN h % 10 < 9 THEN 'no_answer' ELSE 'busy' END,
    NULL,
    CASE WHEN h % 10 < 7 THEN (CASE WHEN h % 2 = 0 THEN 'caller' ELSE 'target' END) END,
    'x' || i, t,
    CASE WHEN h % 10 < 7 THEN t + 8000 END,
    t + 8000 + CASE WHEN h % 10 < 7 THEN 1000 * (30 + h % 600) ELSE 12000 END
FROM (SELECT i, (i * 2654435761) % 4294967296 AS h,
             (SELECT now - span FROM params) + (i * 7776) % (90 * 86400000) AS t FROM n);

INSERT INTO call_attempts (call_id, seq, target_id, destination, outcome, sip_status,
    started_at, answered_at, ended_at)
SELECT id, 1, 1 + (id / 7 % 20), '+1415555' || printf('%04d', 1 + (id / 7 % 20)),
    CASE WHEN outcome = 'answered' AND id % 4 <> 0 THEN 'answered'
         WHEN outcome = 'answered' THEN 'busy' ELSE replace(outcome, 'no_answer', 'no_answer') END,
    NULL, started_at, CASE WHEN outcome = 'answered' AND id % 4 <> 0 THEN answered_at END,
    CASE WHEN outcome = 'answered' AND id % 4 = 0 THEN started_at + 3000 ELSE ended_at END
FROM calls WHERE account_id = 1;

INSERT INTO call_attempts (call_id, seq, target_id, destination, outcome, sip_status,
    started_at, answered_at, ended_at)
SELECT id, 2, 1 + (id / 11 % 20), '+1415555' || printf('%04d', 1 + (id / 11 % 20)), 'answered',
    NULL, started_at + 3000, answered_at, ended_at
FROM calls WHERE account_id = 1 AND outcome = 'answered' AND id % 4 = 0;

ANALYZE;
