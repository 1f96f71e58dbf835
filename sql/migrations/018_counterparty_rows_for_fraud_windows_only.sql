-- Counterparty rows only for the windows labelled fraud; the rollups kept from actor_windows itself.
--
-- 009 stored one counterparty_windows row per (window, counterparty), and 011/014/015 kept the
-- hour and minute rollups from those rows. Since the rollups (011, 014) answer the history query's
-- counts and amounts, the rows are read for one thing only: cp_fraud_rate_H, "which of the other
-- actors' windows touching this counterparty were fraud" (patternalarm/history_features.py, through
-- the partial index on fraud_known_at IS NOT NULL). Yet every window wrote them: a fintech transfer
-- goes to an account few others pay, so each was one row here plus one in each rollup, three row
-- writes per transfer and the largest single item of the scorer's store at 1 M events/min
-- (docs/performance.md "2026-12-07, morning": 686,000 rows for 150,000 windows), and the largest
-- table of the history store.
--
-- Now:
-- * counterparty_fraud_windows holds a row per (window, counterparty) only while the window's
--   fraud_known_at (010) is set, i.e. it is labelled fraud: a label arriving adds its rows, one
--   withdrawn removes them (both are updates of actor_windows.fraud_known_at, through 010's label
--   triggers, as before);
-- * the rollups' deltas come straight from actor_windows' transition tables (one statement trigger
--   per event, as 015), in key order as before, so concurrent scorers still lock rollup rows in the
--   same order;
-- * the unlabelled rows of counterparty_windows are dropped with it; the rollups are unchanged
--   (they count every window, labelled or not, as before).
--
-- The history query reads the same numbers (tests/streaming/test_history_lookup.py holds it to the
-- Python reference, and the rows and rollups to a recount of actor_windows).

DROP TRIGGER actor_windows_counterparties_insert ON actor_windows;
DROP TRIGGER actor_windows_counterparties_update ON actor_windows;
DROP TRIGGER actor_windows_counterparties_delete ON actor_windows;
DROP TRIGGER actor_windows_truncate_counterparties ON actor_windows;
DROP FUNCTION counterparty_rows_on_insert();
DROP FUNCTION counterparty_rows_on_update();
DROP FUNCTION counterparty_rows_on_delete();
DROP FUNCTION pa_write_counterparty_rows(text[], timestamptz[], text[], double precision[], double precision[],
                                         timestamptz[]);
DROP FUNCTION counterparty_windows_truncate();

CREATE TABLE counterparty_fraud_windows (
    counterparty    text        NOT NULL,
    window_start    timestamptz NOT NULL,
    actor_id        text        NOT NULL,
    fraud_known_at  timestamptz NOT NULL,   -- the window's label became known (010)
    PRIMARY KEY (counterparty, window_start, actor_id) INCLUDE (fraud_known_at)
);

INSERT INTO counterparty_fraud_windows (counterparty, window_start, actor_id, fraud_known_at)
SELECT counterparty, window_start, actor_id, fraud_known_at
  FROM counterparty_windows
 WHERE fraud_known_at IS NOT NULL;

DROP TABLE counterparty_windows;  -- its rollup triggers and functions (015) go with it, below
DROP FUNCTION counterparty_rollups_on_insert();
DROP FUNCTION counterparty_rollups_on_update();
DROP FUNCTION counterparty_rollups_on_delete();

-- What a window contributes, once per distinct counterparty: sign * (1 window, its transactions, its
-- amount or 0, 1 if its amount is known) in the shape pa_apply_rollup_deltas (015) takes.
CREATE TYPE pa_window_party AS (sign bigint, counterparty text, window_start timestamptz, actor_id text,
                                event_count double precision, amount_sum double precision,
                                fraud_known_at timestamptz);

CREATE FUNCTION pa_apply_window_parties(parties pa_window_party[]) RETURNS void LANGUAGE sql AS $$
    SELECT pa_apply_rollup_deltas(array_agg(r.counterparty), array_agg(r.window_start), array_agg(r.sign),
                                  array_agg(r.sign * r.event_count), array_agg(r.sign * coalesce(r.amount_sum, 0)),
                                  array_agg(r.sign * (r.amount_sum IS NOT NULL)::int))
      FROM unnest(parties) r
    HAVING count(*) > 0;
    DELETE FROM counterparty_fraud_windows c
     USING unnest(parties) r
     WHERE r.sign < 0 AND r.fraud_known_at IS NOT NULL
       AND (c.counterparty, c.window_start, c.actor_id) = (r.counterparty, r.window_start, r.actor_id);
    INSERT INTO counterparty_fraud_windows (counterparty, window_start, actor_id, fraud_known_at)
    SELECT r.counterparty, r.window_start, r.actor_id, r.fraud_known_at
      FROM unnest(parties) r
     WHERE r.sign > 0 AND r.fraud_known_at IS NOT NULL
     ORDER BY 1, 2, 3
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE SET fraud_known_at = EXCLUDED.fraud_known_at;
$$;

-- The scorer's path (new windows): the sums straight from the transition table, without the arrays
-- of pa_apply_window_parties (0.159 -> 0.150 ms a stored window, docs/performance.md). The
-- same rollup rows and sums as pa_apply_rollup_deltas, in the same key order.
CREATE FUNCTION window_parties_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
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
    RETURN NULL;
END $$;

CREATE FUNCTION window_parties_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_window_parties(array_agg(ROW(-1, p, w.window_start, w.actor_id, w.event_count, w.amount_sum,
                                                  w.fraud_known_at)::pa_window_party))
       FROM old_windows w, LATERAL (SELECT DISTINCT p FROM unnest(w.counterparties) p WHERE p IS NOT NULL) d
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- An update's old and new rows are paired by key. A pair equal in what the history reads
-- (counterparties, event_count, amount_sum) and in fraud_known_at changes nothing (a score arriving,
-- a replayed window); a pair equal in the first only moves its fraud rows (a label arriving or
-- withdrawn) and leaves the rollups alone; every other old row is taken out and every other new
-- row put in (the content changed, or the key did).
CREATE FUNCTION window_parties_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- content changed (or the key): the old window out, the new one in, rollups and fraud rows
    PERFORM pa_apply_window_parties(array_agg(ROW(c.sign, p, c.window_start, c.actor_id, c.event_count,
                                                  c.amount_sum, c.fraud_known_at)::pa_window_party))
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
                                   AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum)) c,
            LATERAL (SELECT DISTINCT p FROM unnest(c.counterparties) p WHERE p IS NOT NULL) d
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

CREATE TRIGGER actor_windows_counterparties_insert AFTER INSERT ON actor_windows
REFERENCING NEW TABLE AS new_windows FOR EACH STATEMENT EXECUTE FUNCTION window_parties_on_insert();
CREATE TRIGGER actor_windows_counterparties_update AFTER UPDATE ON actor_windows
REFERENCING OLD TABLE AS old_windows NEW TABLE AS new_windows
FOR EACH STATEMENT EXECUTE FUNCTION window_parties_on_update();
CREATE TRIGGER actor_windows_counterparties_delete AFTER DELETE ON actor_windows
REFERENCING OLD TABLE AS old_windows FOR EACH STATEMENT EXECUTE FUNCTION window_parties_on_delete();

-- TRUNCATE fires no row or statement DELETE triggers: what derives from actor_windows follows here.
CREATE FUNCTION counterparty_rows_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE counterparty_fraud_windows, counterparty_hours, counterparty_minutes;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_truncate_counterparties AFTER TRUNCATE ON actor_windows
FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rows_truncate();
