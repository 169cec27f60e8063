-- Pool utilisation history: the most numbers of each pool leased at once in each UTC hour, and
-- the pool's size then. A pool that runs out of numbers serves its overflow number and loses
-- attribution, so the account must see when it came near.

CREATE TABLE pool_usage (
    pool_id      INTEGER NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    hour         INTEGER NOT NULL,
    peak_in_use  INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (pool_id, hour)
) WITHOUT ROWID;
