-- Counterparty rows (009/010) and their rollups (011/014) kept once per statement, not per row.
--
-- The window scorer stores a micro-batch of ~100 windows in one INSERT ... ON CONFLICT. The row
-- triggers ran, for each window, a statement writing its counterparty rows, and for each of those a
-- rollup trigger upserting one counterparty_hours and one counterparty_minutes row: a popular
-- counterparty (a game) had its two rollup rows rewritten once per window of the batch, each a new
-- row version in the same transaction, and the rollup rows were locked in the batch's row order, so
-- two scorers sharing the windows topic (PA_SCORER_WORKERS) could deadlock on them. Now:
--
-- * actor_windows: one statement trigger per event (transition tables) writes the counterparty rows
--   of all the statement's windows at once, with the same rules as 010's row trigger (a rewrite that
--   changes what the history reads replaces the rows; one that changes only fraud_known_at updates
--   it; a score arriving changes nothing);
-- * counterparty_windows: one statement trigger per event sums the rows' changes per (counterparty,
--   hour) and (counterparty, minute) and applies each sum once, in key order: one new version of a
--   rollup row per statement, and every transaction locks rollup rows in the same order.
--
-- The rollups stay equal to a recount (tests/streaming/test_history_lookup.py); the history query
-- and the other triggers are unchanged.

DROP TRIGGER actor_windows_counterparties ON actor_windows;
DROP TRIGGER actor_windows_forget_counterparties ON actor_windows;
DROP TRIGGER counterparty_windows_rollups ON counterparty_windows;
DROP FUNCTION counterparty_windows_sync();
DROP FUNCTION counterparty_windows_forget();
DROP FUNCTION counterparty_rollups_sync();

-- Rows for windows given as parallel arrays (one element per counterparty of a window), in key
-- order; a row already there takes the new values.
CREATE FUNCTION pa_write_counterparty_rows(parties text[], starts timestamptz[], actors text[],
                                           counts double precision[], amounts double precision[],
                                           known timestamptz[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counterparty_windows (counterparty, window_start, actor_id, txn_count, amount_sum, fraud_known_at)
    SELECT DISTINCT * FROM unnest(parties, starts, actors, counts, amounts, known)
     ORDER BY 1, 2, 3
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE
       SET txn_count = EXCLUDED.txn_count, amount_sum = EXCLUDED.amount_sum,
           fraud_known_at = EXCLUDED.fraud_known_at
$$;

CREATE FUNCTION counterparty_rows_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_write_counterparty_rows(array_agg(p), array_agg(w.window_start), array_agg(w.actor_id),
                                       array_agg(w.event_count::double precision), array_agg(w.amount_sum),
                                       array_agg(w.fraud_known_at))
       FROM new_windows w, unnest(w.counterparties) AS p
      WHERE p IS NOT NULL
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- An update's old and new rows are paired by key. A pair equal in what the history reads
-- (counterparties, event_count, amount_sum) keeps its counterparty rows, fraud_known_at copied if it
-- changed (a score arriving changes nothing); every other old row loses its rows and every other
-- new row gets them (the content changed, or the key did).
CREATE FUNCTION counterparty_rows_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM counterparty_windows c
     USING old_windows o
     WHERE c.counterparty = ANY (o.counterparties) AND c.window_start = o.window_start AND c.actor_id = o.actor_id
       AND NOT EXISTS (SELECT 1 FROM new_windows n
                        WHERE n.actor_id = o.actor_id AND n.window_start = o.window_start
                          AND n.counterparties IS NOT DISTINCT FROM o.counterparties
                          AND n.event_count IS NOT DISTINCT FROM o.event_count
                          AND n.amount_sum IS NOT DISTINCT FROM o.amount_sum);
    PERFORM pa_write_counterparty_rows(array_agg(p), array_agg(n.window_start), array_agg(n.actor_id),
                                       array_agg(n.event_count::double precision), array_agg(n.amount_sum),
                                       array_agg(n.fraud_known_at))
       FROM new_windows n, unnest(n.counterparties) AS p
      WHERE p IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM old_windows o
                         WHERE o.actor_id = n.actor_id AND o.window_start = n.window_start
                           AND o.counterparties IS NOT DISTINCT FROM n.counterparties
                           AND o.event_count IS NOT DISTINCT FROM n.event_count
                           AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum)
     HAVING count(*) > 0;
    UPDATE counterparty_windows c SET fraud_known_at = n.fraud_known_at
      FROM new_windows n JOIN old_windows o
        ON o.actor_id = n.actor_id AND o.window_start = n.window_start
       AND o.counterparties IS NOT DISTINCT FROM n.counterparties
       AND o.event_count IS NOT DISTINCT FROM n.event_count
       AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum
     WHERE n.fraud_known_at IS DISTINCT FROM o.fraud_known_at
       AND c.counterparty = ANY (n.counterparties) AND c.window_start = n.window_start AND c.actor_id = n.actor_id;
    RETURN NULL;
END $$;

CREATE FUNCTION counterparty_rows_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM counterparty_windows c
     USING old_windows o
     WHERE c.counterparty = ANY (o.counterparties) AND c.window_start = o.window_start AND c.actor_id = o.actor_id;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_counterparties_insert AFTER INSERT ON actor_windows
REFERENCING NEW TABLE AS new_windows FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rows_on_insert();
CREATE TRIGGER actor_windows_counterparties_update AFTER UPDATE ON actor_windows
REFERENCING OLD TABLE AS old_windows NEW TABLE AS new_windows
FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rows_on_update();
CREATE TRIGGER actor_windows_counterparties_delete AFTER DELETE ON actor_windows
REFERENCING OLD TABLE AS old_windows FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rows_on_delete();

-- The rollups: each counterparty row written counts +1 window with its transactions and amount,
-- each removed -1; the sums per bucket are applied once, in key order (parallel arrays, one
-- element per row changed).
CREATE FUNCTION pa_apply_rollup_deltas(parties text[], starts timestamptz[], windows bigint[],
                                       txns double precision[], amounts double precision[],
                                       amounted bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counterparty_hours AS h (counterparty, hour, windows, txns, amount, amounts)
    SELECT d.cp, date_trunc('hour', d.ws, 'UTC'), sum(d.n), sum(d.t), sum(d.a), sum(d.k)
      FROM unnest(parties, starts, windows, txns, amounts, amounted) AS d(cp, ws, n, t, a, k)
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO counterparty_minutes AS m (counterparty, window_start, windows, txns, amount, amounts)
    SELECT d.cp, d.ws, sum(d.n), sum(d.t), sum(d.a), sum(d.k)
      FROM unnest(parties, starts, windows, txns, amounts, amounted) AS d(cp, ws, n, t, a, k)
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (counterparty, window_start) DO UPDATE
       SET windows = m.windows + EXCLUDED.windows, txns = m.txns + EXCLUDED.txns,
           amount = m.amount + EXCLUDED.amount, amounts = m.amounts + EXCLUDED.amounts;
$$;

-- sign * (1 window, txn_count, amount_sum or 0, 1 if amount_sum is known) of each row of `rows`
CREATE FUNCTION counterparty_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_rollup_deltas(array_agg(r.counterparty), array_agg(r.window_start), array_agg(1::bigint),
                                   array_agg(r.txn_count), array_agg(coalesce(r.amount_sum, 0)),
                                   array_agg((r.amount_sum IS NOT NULL)::int::bigint))
       FROM new_rows r HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION counterparty_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_rollup_deltas(array_agg(r.counterparty), array_agg(r.window_start), array_agg(-1::bigint),
                                   array_agg(-r.txn_count), array_agg(-coalesce(r.amount_sum, 0)),
                                   array_agg(-(r.amount_sum IS NOT NULL)::int::bigint))
       FROM old_rows r HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- Rows whose bucket, txn_count and amount_sum stay as they were (fraud_known_at copied) change nothing.
CREATE FUNCTION counterparty_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_rollup_deltas(array_agg(d.counterparty), array_agg(d.window_start), array_agg(d.sign),
                                   array_agg(d.sign * d.txn_count), array_agg(d.sign * coalesce(d.amount_sum, 0)),
                                   array_agg(d.sign * (d.amount_sum IS NOT NULL)::int))
       FROM (SELECT 1::bigint AS sign, n.counterparty, n.window_start, n.txn_count, n.amount_sum FROM new_rows n
              WHERE NOT EXISTS (SELECT 1 FROM old_rows o
                                 WHERE (o.counterparty, o.window_start, o.actor_id, o.txn_count)
                                       = (n.counterparty, n.window_start, n.actor_id, n.txn_count)
                                   AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum)
             UNION ALL
             SELECT -1::bigint, o.counterparty, o.window_start, o.txn_count, o.amount_sum FROM old_rows o
              WHERE NOT EXISTS (SELECT 1 FROM new_rows n
                                 WHERE (o.counterparty, o.window_start, o.actor_id, o.txn_count)
                                       = (n.counterparty, n.window_start, n.actor_id, n.txn_count)
                                   AND o.amount_sum IS NOT DISTINCT FROM n.amount_sum)) d
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER counterparty_windows_rollups_insert AFTER INSERT ON counterparty_windows
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rollups_on_insert();
CREATE TRIGGER counterparty_windows_rollups_update AFTER UPDATE ON counterparty_windows
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rollups_on_update();
CREATE TRIGGER counterparty_windows_rollups_delete AFTER DELETE ON counterparty_windows
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION counterparty_rollups_on_delete();
