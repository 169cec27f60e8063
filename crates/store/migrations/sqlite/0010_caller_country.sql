-- The caller's country (ISO 3166 alpha-2, from the number's prefix; '' when the number has none),
-- written with each call so that reports filter, group and roll up by it. Rows recorded before
-- this migration get it from the report task, which fills the NULL ones in batches.

ALTER TABLE calls ADD COLUMN caller_country TEXT;
CREATE INDEX calls_caller_country_unknown ON calls(id) WHERE caller_country IS NULL;
