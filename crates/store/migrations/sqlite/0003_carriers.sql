-- Carrier connections: a programmable-voice carrier account whose webhooks route calls on some
-- of the account's tracking numbers; and the server's own secrets (the failover cursor key).

CREATE TABLE carrier_connections (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key              TEXT    NOT NULL UNIQUE,
    name             TEXT    NOT NULL,
    carrier          TEXT    NOT NULL,
    carrier_account  TEXT,
    secret           TEXT    NOT NULL,
    numbers          TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX carrier_connections_account ON carrier_connections(account_id, id);

CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BLOB NOT NULL
);
