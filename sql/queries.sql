-- Queries operators run over the mlfcgi audit log with the sqlite3 tool:
--   sqlite3 -header -column /var/lib/mlfcgi/audit.db < sql/queries.sql
-- or paste one at a time. Each reads the predictions table of
-- sql/schema.sql; none of them writes. Timestamps are UTC text, so
-- substr(ts, 1, 13) is the hour and ordering by ts is ordering in time.

-- Predictions per model and version per hour, newest first.
SELECT substr(ts, 1, 13) || ':00Z' AS hour,
       model, version,
       count(*)                    AS predictions
FROM predictions
GROUP BY hour, model, version
ORDER BY hour DESC, model, version;

-- Class distribution per model and version: how often each label is
-- predicted, and its share. (Regression models have no label.)
SELECT model, version,
       json_extract(output, '$.label') AS label,
       count(*)                        AS predictions,
       round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY model, version), 2)
                                       AS percent
FROM predictions
WHERE json_extract(output, '$.label') IS NOT NULL
GROUP BY model, version, label
ORDER BY model, version, predictions DESC;

-- Latency percentiles (p50, p95, p99, max) in microseconds per model and
-- version, by the nearest-rank method over the last 24 hours.
WITH recent AS (
    SELECT model, version, latency_us,
           row_number() OVER (PARTITION BY model, version ORDER BY latency_us) AS rn,
           count(*)     OVER (PARTITION BY model, version)                     AS n
    FROM predictions
    WHERE ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')
)
SELECT model, version, n AS predictions,
       min(CASE WHEN rn >= 0.50 * n THEN latency_us END) AS p50_us,
       min(CASE WHEN rn >= 0.95 * n THEN latency_us END) AS p95_us,
       min(CASE WHEN rn >= 0.99 * n THEN latency_us END) AS p99_us,
       max(latency_us)                                   AS max_us
FROM recent
GROUP BY model, version;

-- Mean confidence per model per hour: a falling line is a first sign of
-- drift in what clients send.
SELECT substr(ts, 1, 13) || ':00Z'                      AS hour,
       model, version,
       round(avg(json_extract(output, '$.confidence')), 4) AS mean_confidence,
       count(*)                                          AS predictions
FROM predictions
WHERE json_extract(output, '$.confidence') IS NOT NULL
GROUP BY hour, model, version
ORDER BY hour DESC;

-- Everything logged for one request (replace the id).
SELECT id, ts, model, version, input, output, latency_us, cached, pid
FROM predictions
WHERE request_id = 'put-the-request-id-here';
