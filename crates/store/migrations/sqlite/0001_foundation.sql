-- The foundation: accounts and keys, pools and tracking numbers, campaigns, verified domains,
-- visitor sessions and DNI refusals. Every table but accounts carries account_id.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE pools (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX pools_account ON pools(account_id, id);

CREATE TABLE tracking_numbers (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    pool_id     INTEGER REFERENCES pools(id) ON DELETE SET NULL,
    e164        TEXT    NOT NULL UNIQUE,
    country     TEXT    NOT NULL,
    region      TEXT,
    kind        TEXT    NOT NULL,
    languages   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX tracking_numbers_account ON tracking_numbers(account_id, id);
CREATE INDEX tracking_numbers_pool ON tracking_numbers(pool_id);

CREATE TABLE campaigns (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    default_number     TEXT    NOT NULL,
    swap_numbers       TEXT    NOT NULL,
    trigger_parameter  TEXT,
    assignment         TEXT    NOT NULL,
    idle_timeout_secs  INTEGER NOT NULL,
    domains            TEXT    NOT NULL,
    source_rules       TEXT    NOT NULL,
    pool_id            INTEGER REFERENCES pools(id) ON DELETE SET NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX campaigns_account ON campaigns(account_id, id);

CREATE TABLE domains (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    host         TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    verified_at  INTEGER,
    created_at   INTEGER NOT NULL,
    UNIQUE (account_id, host)
);

CREATE TABLE visitor_sessions (
    id                TEXT    PRIMARY KEY,
    account_id        INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id       INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    visitor           TEXT    NOT NULL,
    number_id         INTEGER,
    number_e164       TEXT    NOT NULL,
    attributed        INTEGER NOT NULL,
    landing_url       TEXT    NOT NULL,
    referrer          TEXT,
    utm_source        TEXT,
    utm_medium        TEXT,
    utm_campaign      TEXT,
    utm_term          TEXT,
    utm_content       TEXT,
    gclid             TEXT,
    fbclid            TEXT,
    msclkid           TEXT,
    country           TEXT,
    language          TEXT,
    user_agent        TEXT,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    lease_expires_at  INTEGER NOT NULL
);
CREATE INDEX visitor_sessions_campaign_visitor ON visitor_sessions(campaign_id, visitor);
CREATE INDEX visitor_sessions_lease ON visitor_sessions(lease_expires_at);
CREATE INDEX visitor_sessions_account ON visitor_sessions(account_id, first_seen);

CREATE TABLE dni_refusals (
    id           INTEGER PRIMARY KEY,
    account_id   INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    campaign_id  INTEGER REFERENCES campaigns(id) ON DELETE CASCADE,
    origin       TEXT,
    page_url     TEXT,
    reason       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX dni_refusals_account ON dni_refusals(account_id, id);
