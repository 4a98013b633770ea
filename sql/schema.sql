-- mlfcgi audit log schema, version 1.
-- The single source of the schema: mlfcgi embeds this file at build time and
-- applies it, in one transaction, to a database whose user_version is 0.
-- One row per predicted instance. Written only by mlfcgi's audit writer
-- threads (one per process); read by operators with sqlite3 (sql/queries.sql).

CREATE TABLE IF NOT EXISTS predictions (
    id          INTEGER PRIMARY KEY,          -- rowid, in commit order
    ts          TEXT    NOT NULL,             -- UTC, ISO-8601 with milliseconds: 2026-11-29T23:59:59.123Z
    request_id  TEXT    NOT NULL,             -- X-Request-Id, given or generated
    model       TEXT    NOT NULL,             -- model name
    version     TEXT    NOT NULL,             -- model version
    input       TEXT    NOT NULL,             -- validated features, JSON object keyed by name
    output      TEXT    NOT NULL,             -- JSON: the answer /predict gave for it, less model, version, request_id
    latency_us  INTEGER NOT NULL,             -- from request accepted to response ready
    cached      INTEGER NOT NULL DEFAULT 0,   -- 1 when served from the prediction cache
    pid         INTEGER NOT NULL              -- the mlfcgi process that served it
);

CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);

PRAGMA user_version = 1;
