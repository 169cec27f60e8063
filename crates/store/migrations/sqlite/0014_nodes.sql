-- Nodes sharing one database.
--
-- Nodes: each running Callopt process registers at start and beats every few seconds. A call
-- carries the node that handles it, so that when a node stops beating, another closes its calls
-- in progress as interrupted, and a node restarting closes only its own. A node's slot makes
-- the call ids it hands out its own (ids of one slot are equal modulo the number of slots).

CREATE TABLE nodes (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL,
    slot          INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL
);

ALTER TABLE calls ADD COLUMN node_id INTEGER;

-- Changes to an account's objects, for the other nodes: each change bumps the account's
-- version, and every node reloads the accounts whose version moved.
CREATE TABLE account_changes (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX account_changes_at ON account_changes(changed_at);
