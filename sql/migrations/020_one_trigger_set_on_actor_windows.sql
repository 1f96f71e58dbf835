-- One set of statement triggers on actor_windows keeps everything derived from it.
--
-- 018 kept the counterparty side (counterparty_hours, counterparty_minutes, counterparty_fraud_windows)
-- and 019 added the actor's side (actor_hours, actor_counterparty_hours) with a second, parallel set
-- of triggers: every upsert of the scorer fired two insert and two update statement triggers, and the
-- update's pairing of old and new rows ("equal in what the history reads") was written twice. Now
-- one function per event applies both sides (renamed at the end for what they keep now):
--
-- * insert (the scorer's path): each table's sums straight from the transition table, in key order,
--   as 018 measured cheaper than passing arrays (docs/performance.md);
-- * update: the changed rows (old out, new in) are found once and passed, signed, to
--   pa_apply_window_changes; a label arriving or withdrawn on an unchanged window only moves its
--   counterparty fraud rows (the rollups count windows, not labels);
-- * delete: every old row out through pa_apply_window_changes;
-- * TRUNCATE (which fires no DELETE triggers) empties every derived table.
--
-- Tables, rows and sums are unchanged; tests/streaming/test_history_lookup.py recounts all of them
-- from actor_windows after inserts, rewrites, labels, deletes and TRUNCATE. Lock order stays
-- deterministic: one function, its statements in a fixed order, each in key order.

DROP TRIGGER actor_windows_actor_rollups_insert ON actor_windows;
DROP TRIGGER actor_windows_actor_rollups_update ON actor_windows;
DROP TRIGGER actor_windows_actor_rollups_delete ON actor_windows;
DROP TRIGGER actor_windows_truncate_actor_rollups ON actor_windows;
DROP FUNCTION actor_rollups_on_insert();
DROP FUNCTION actor_rollups_on_update();
DROP FUNCTION actor_rollups_on_delete();
DROP FUNCTION actor_rollups_truncate();
DROP FUNCTION pa_apply_actor_deltas(pa_window_delta[]);
DROP TYPE pa_window_delta;
DROP FUNCTION pa_apply_window_parties(pa_window_party[]);
DROP TYPE pa_window_party;
DROP FUNCTION pa_apply_rollup_deltas(text[], timestamptz[], bigint[], double precision[], double precision[],
                                     bigint[]);

-- A window in or out of the history: sign (+1 in, -1 out) and what the derived tables read of it.
CREATE TYPE pa_window_change AS (sign bigint, actor_id text, window_start timestamptz,
                                 event_count double precision, amount_sum double precision,
                                 counterparties text[], fraud_known_at timestamptz);

-- A window counts once per distinct counterparty; each table's rows in key order.
CREATE FUNCTION pa_apply_window_changes(changes pa_window_change[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counterparty_hours AS h (counterparty, hour, windows, txns, amount, amounts)
    SELECT p, date_trunc('hour', c.window_start, 'UTC'), sum(c.sign), sum(c.sign * c.event_count),
           sum(c.sign * coalesce(c.amount_sum, 0)), sum(c.sign * (c.amount_sum IS NOT NULL)::int)
      FROM unnest(changes) c, LATERAL (SELECT DISTINCT p FROM unnest(c.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO counterparty_minutes AS m (counterparty, window_start, windows, txns, amount, amounts)
    SELECT p, c.window_start, sum(c.sign), sum(c.sign * c.event_count),
           sum(c.sign * coalesce(c.amount_sum, 0)), sum(c.sign * (c.amount_sum IS NOT NULL)::int)
      FROM unnest(changes) c, LATERAL (SELECT DISTINCT p FROM unnest(c.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, window_start) DO UPDATE
       SET windows = m.windows + EXCLUDED.windows, txns = m.txns + EXCLUDED.txns,
           amount = m.amount + EXCLUDED.amount, amounts = m.amounts + EXCLUDED.amounts;
    DELETE FROM counterparty_fraud_windows f
     USING unnest(changes) c
     WHERE c.sign < 0 AND c.fraud_known_at IS NOT NULL
       AND f.counterparty = ANY (c.counterparties) AND f.window_start = c.window_start AND f.actor_id = c.actor_id;
    INSERT INTO counterparty_fraud_windows (counterparty, window_start, actor_id, fraud_known_at)
    SELECT DISTINCT p, c.window_start, c.actor_id, c.fraud_known_at
      FROM unnest(changes) c, unnest(c.counterparties) p
     WHERE c.sign > 0 AND p IS NOT NULL AND c.fraud_known_at IS NOT NULL
     ORDER BY 1, 2, 3
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE SET fraud_known_at = EXCLUDED.fraud_known_at;
    INSERT INTO actor_hours AS h (actor_id, hour, windows, txns, amount, amounts)
    SELECT c.actor_id, date_trunc('hour', c.window_start, 'UTC'), sum(c.sign), sum(c.sign * c.event_count),
           sum(c.sign * coalesce(c.amount_sum, 0)), sum(c.sign * (c.amount_sum IS NOT NULL)::int)
      FROM unnest(changes) c
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (actor_id, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO actor_counterparty_hours AS h (actor_id, counterparty, hour, windows, txns, amount, amounts)
    SELECT c.actor_id, p, date_trunc('hour', c.window_start, 'UTC'), sum(c.sign), sum(c.sign * c.event_count),
           sum(c.sign * coalesce(c.amount_sum, 0)), sum(c.sign * (c.amount_sum IS NOT NULL)::int)
      FROM unnest(changes) c, LATERAL (SELECT DISTINCT p FROM unnest(c.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (actor_id, counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
$$;

-- The scorer's path: the same rows and sums as pa_apply_window_changes with every sign +1.
CREATE OR REPLACE FUNCTION window_parties_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counterparty_hours AS h (counterparty, hour, windows, txns, amount, amounts)
    SELECT p, date_trunc('hour', w.window_start, 'UTC'), count(*), sum(w.event_count), coalesce(sum(w.amount_sum), 0),
           count(w.amount_sum)
      FROM new_windows w, LATERAL (SELECT DISTINCT p FROM unnest(w.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO counterparty_minutes AS m (counterparty, window_start, windows, txns, amount, amounts)
    SELECT p, w.window_start, count(*), sum(w.event_count), coalesce(sum(w.amount_sum), 0), count(w.amount_sum)
      FROM new_windows w, LATERAL (SELECT DISTINCT p FROM unnest(w.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, window_start) DO UPDATE
       SET windows = m.windows + EXCLUDED.windows, txns = m.txns + EXCLUDED.txns,
           amount = m.amount + EXCLUDED.amount, amounts = m.amounts + EXCLUDED.amounts;
    INSERT INTO counterparty_fraud_windows (counterparty, window_start, actor_id, fraud_known_at)
    SELECT DISTINCT p, w.window_start, w.actor_id, w.fraud_known_at
      FROM new_windows w, unnest(w.counterparties) p
     WHERE p IS NOT NULL AND w.fraud_known_at IS NOT NULL
     ORDER BY 1, 2, 3
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE SET fraud_known_at = EXCLUDED.fraud_known_at;
    INSERT INTO actor_hours AS h (actor_id, hour, windows, txns, amount, amounts)
    SELECT w.actor_id, date_trunc('hour', w.window_start, 'UTC'), count(*), sum(w.event_count),
           coalesce(sum(w.amount_sum), 0), count(w.amount_sum)
      FROM new_windows w
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (actor_id, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO actor_counterparty_hours AS h (actor_id, counterparty, hour, windows, txns, amount, amounts)
    SELECT w.actor_id, p, date_trunc('hour', w.window_start, 'UTC'), count(*), sum(w.event_count),
           coalesce(sum(w.amount_sum), 0), count(w.amount_sum)
      FROM new_windows w, LATERAL (SELECT DISTINCT p FROM unnest(w.counterparties) p WHERE p IS NOT NULL) d
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (actor_id, counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION window_parties_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_window_changes(array_agg(ROW(-1, w.actor_id, w.window_start, w.event_count, w.amount_sum,
                                                  w.counterparties, w.fraud_known_at)::pa_window_change))
       FROM old_windows w
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- An update's old and new rows are paired by key. A pair equal in what the history reads
-- (counterparties, event_count, amount_sum) and in fraud_known_at changes nothing (a score arriving,
-- a replayed window); a pair equal in the first only moves its counterparty fraud rows (a label
-- arriving or withdrawn); every other old row is taken out and every other new row put in (the
-- content changed, or the key did).
CREATE OR REPLACE FUNCTION window_parties_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_window_changes(array_agg(ROW(c.sign, c.actor_id, c.window_start, c.event_count, c.amount_sum,
                                                  c.counterparties, c.fraud_known_at)::pa_window_change))
       FROM (SELECT -1 AS sign, o.* FROM old_windows o
              WHERE NOT EXISTS (SELECT 1 FROM new_windows n
                                 WHERE n.actor_id = o.actor_id AND n.window_start = o.window_start
                                   AND n.counterparties IS NOT DISTINCT FROM o.counterparties
                                   AND n.event_count IS NOT DISTINCT FROM o.event_count
                                   AND n.amount_sum IS NOT DISTINCT FROM o.amount_sum)
             UNION ALL
             SELECT 1, n.* FROM new_windows n
              WHERE NOT EXISTS (SELECT 1 FROM old_windows o
                                 WHERE o.actor_id = n.actor_id AND o.window_start = n.window_start
                                   AND o.counterparties IS NOT DISTINCT FROM n.counterparties
                                   AND o.event_count IS NOT DISTINCT FROM n.event_count
                                   AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum)) c
     HAVING count(*) > 0;
    -- same content, label changed: only the fraud rows follow it
    DELETE FROM counterparty_fraud_windows f
     USING old_windows o JOIN new_windows n USING (actor_id, window_start)
     WHERE o.fraud_known_at IS NOT NULL AND n.fraud_known_at IS NULL
       AND n.counterparties IS NOT DISTINCT FROM o.counterparties
       AND n.event_count IS NOT DISTINCT FROM o.event_count
       AND n.amount_sum IS NOT DISTINCT FROM o.amount_sum
       AND f.counterparty = ANY (o.counterparties) AND f.window_start = o.window_start AND f.actor_id = o.actor_id;
    INSERT INTO counterparty_fraud_windows (counterparty, window_start, actor_id, fraud_known_at)
    SELECT DISTINCT p, n.window_start, n.actor_id, n.fraud_known_at
      FROM old_windows o JOIN new_windows n USING (actor_id, window_start), unnest(n.counterparties) p
     WHERE p IS NOT NULL AND n.fraud_known_at IS NOT NULL AND n.fraud_known_at IS DISTINCT FROM o.fraud_known_at
       AND n.counterparties IS NOT DISTINCT FROM o.counterparties
       AND n.event_count IS NOT DISTINCT FROM o.event_count
       AND n.amount_sum IS NOT DISTINCT FROM o.amount_sum
     ORDER BY 1, 2, 3
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE SET fraud_known_at = EXCLUDED.fraud_known_at;
    RETURN NULL;
END $$;

-- TRUNCATE fires no DELETE triggers: everything derived from actor_windows follows here.
CREATE OR REPLACE FUNCTION counterparty_rows_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE counterparty_fraud_windows, counterparty_hours, counterparty_minutes, actor_hours,
             actor_counterparty_hours;
    RETURN NULL;
END $$;

-- Named for what they keep now: the history store's tables derived from actor_windows.
ALTER FUNCTION window_parties_on_insert() RENAME TO window_history_on_insert;
ALTER FUNCTION window_parties_on_update() RENAME TO window_history_on_update;
ALTER FUNCTION window_parties_on_delete() RENAME TO window_history_on_delete;
ALTER FUNCTION counterparty_rows_truncate() RENAME TO window_history_truncate;
ALTER TRIGGER actor_windows_counterparties_insert ON actor_windows RENAME TO actor_windows_history_insert;
ALTER TRIGGER actor_windows_counterparties_update ON actor_windows RENAME TO actor_windows_history_update;
ALTER TRIGGER actor_windows_counterparties_delete ON actor_windows RENAME TO actor_windows_history_delete;
ALTER TRIGGER actor_windows_truncate_counterparties ON actor_windows RENAME TO actor_windows_history_truncate;
