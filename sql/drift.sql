-- Drift: what clients sent a model lately, against the data it was trained
-- on. Reads the training statistics that `mlfcgi-export --train-data` wrote
-- into the model file (metadata.training_stats, models/FORMAT.md) and the
-- audit log's predictions of that model (any version), over the last
-- @hours hours (default 24). Run with the sqlite3 tool (it needs the shell's
-- readfile() and the math functions Debian's sqlite3 has):
--
--   sqlite3 -header -column \
--     -cmd ".parameter set @model_file '/etc/mlfcgi/models/iris.json'" \
--     -cmd ".parameter set @hours 6" \
--     /var/lib/mlfcgi/audit.db < sql/drift.sql
--
-- Nothing here writes. A feature's training statistics absent: no row.

-- Numeric features. served_n and missing_share count the window's rows;
-- shift_sd is (served mean - training mean) / training std; outside_share
-- is the share of values outside the training [min, max]; psi is the
-- population stability index over the training quantile bins (the bins'
-- training shares are in the model file; an empty bin counts as 0.0001).
-- Rule of thumb: psi < 0.1 stable, 0.1-0.25 moderate, > 0.25 drift.
WITH
doc AS (SELECT json(readfile(@model_file)) AS d),
train AS (
    SELECT json_extract(doc.d, '$.name') AS model, f.key AS feature,
           f.value AS s, json_array_length(f.value, '$.bins.shares') AS nbins
    FROM doc, json_each(doc.d, '$.metadata.training_stats.features') AS f
    WHERE json_extract(f.value, '$.mean') IS NOT NULL
),
served AS (
    SELECT t.model, t.feature, t.s, t.nbins,
           json_extract(p.input, '$."' || t.feature || '"') AS x
    FROM train AS t JOIN predictions AS p ON p.model = t.model
    WHERE p.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                           '-' || coalesce(@hours, 24) || ' hours')
),
binned AS (
    SELECT feature, x,
           (SELECT count(*) FROM json_each(s, '$.bins.edges') AS e
            WHERE e.value <= x) AS bin
    FROM served WHERE typeof(x) IN ('integer', 'real')
),
totals AS (
    SELECT model, feature, s, nbins, count(*) AS rows,
           count(CASE WHEN typeof(x) IN ('integer', 'real') THEN 1 END) AS n,
           avg(CASE WHEN typeof(x) IN ('integer', 'real') THEN x END) AS mean,
           sum(CASE WHEN typeof(x) IN ('integer', 'real') AND
                    (x < json_extract(s, '$.min') OR x > json_extract(s, '$.max'))
               THEN 1 ELSE 0 END) AS outside
    FROM served GROUP BY model, feature
),
bins AS (   -- every bin of every feature, with its served count (0 if none)
    SELECT t.feature, b.key AS bin, b.value AS expected,
           (SELECT count(*) FROM binned AS x
            WHERE x.feature = t.feature AND x.bin = b.key) AS hits, t.n
    FROM totals AS t, json_each(t.s, '$.bins.shares') AS b
),
psi AS (
    SELECT feature,
           sum((max(1.0 * hits / max(n, 1), 0.0001) - max(expected, 0.0001)) *
               ln(max(1.0 * hits / max(n, 1), 0.0001) / max(expected, 0.0001))) AS psi
    FROM bins GROUP BY feature
)
SELECT t.model, t.feature, t.n AS served_n,
       round(1.0 * (t.rows - t.n) / t.rows, 4) AS missing_share,
       round(t.mean, 6) AS served_mean,
       round(json_extract(t.s, '$.mean'), 6) AS train_mean,
       round((t.mean - json_extract(t.s, '$.mean')) /
             nullif(json_extract(t.s, '$.std'), 0), 4) AS shift_sd,
       round(1.0 * t.outside / max(t.n, 1), 4) AS outside_share,
       round(p.psi, 4) AS psi,
       CASE WHEN t.n = 0 THEN 'no data'
            WHEN p.psi < 0.1 THEN 'stable'
            WHEN p.psi < 0.25 THEN 'moderate'
            ELSE 'drift' END AS verdict
FROM totals AS t JOIN psi AS p USING (feature)
ORDER BY p.psi DESC;

-- Category features: each category's share of the window's values against
-- its share of the training data ("(other)": values the training data did
-- not have, which the model ignores or rejects; rejected ones are not
-- logged). One row per feature and category, largest difference first.
WITH
doc AS (SELECT json(readfile(@model_file)) AS d),
train AS (
    SELECT json_extract(doc.d, '$.name') AS model, f.key AS feature, f.value AS s
    FROM doc, json_each(doc.d, '$.metadata.training_stats.features') AS f
    WHERE json_extract(f.value, '$.counts') IS NOT NULL
),
served AS (
    SELECT t.feature, json_extract(p.input, '$."' || t.feature || '"') AS x
    FROM train AS t JOIN predictions AS p ON p.model = t.model
    WHERE p.ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now',
                           '-' || coalesce(@hours, 24) || ' hours')
      AND json_extract(p.input, '$."' || t.feature || '"') IS NOT NULL
),
cats AS (
    SELECT t.model, t.feature, c.key AS category,
           1.0 * c.value / max(json_extract(t.s, '$.count'), 1) AS train_share
    FROM train AS t, json_each(t.s, '$.counts') AS c
    UNION ALL
    SELECT model, feature, '(other)',
           1.0 * json_extract(s, '$.other') / max(json_extract(s, '$.count'), 1)
    FROM train
),
shares AS (
    SELECT c.model, c.feature, c.category, c.train_share,
           (SELECT count(*) FROM served AS v WHERE v.feature = c.feature AND
                (v.x = c.category OR (c.category = '(other)' AND
                 v.x NOT IN (SELECT key FROM train AS t2,
                             json_each(t2.s, '$.counts')
                             WHERE t2.feature = c.feature)))) AS hits,
           (SELECT count(*) FROM served AS v WHERE v.feature = c.feature) AS n
    FROM cats AS c
)
SELECT model, feature, category, n AS served_n,
       round(1.0 * hits / max(n, 1), 4) AS served_share,
       round(train_share, 4) AS train_share,
       round(1.0 * hits / max(n, 1) - train_share, 4) AS difference
FROM shares
ORDER BY feature, abs(1.0 * hits / max(n, 1) - train_share) DESC;
