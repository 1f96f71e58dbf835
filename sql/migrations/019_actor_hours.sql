-- The actor's own history in hourly rollups: the history query's cost no longer grows with it.
--
-- The window scorer's history query (patternalarm/history_features.py) read every window of the
-- actor over the longest range (7 days plus the label delay) twice: once for the actor's own
-- features (actor_txn_count_H, actor_amount_mean_H, actor_fraud_rate_H) and once for "the actor's
-- own windows touching this counterparty", which the counterparty features take out (other actors
-- only). A live stream's actors are minutes old, so the bench read a few rows; but an actor active
-- every minute (the generator's fixed population at CRISIS and above) has ~10,000 windows a week,
-- and then the query took 12 ms a window instead of ~0.2 (streaming/bench_history_lookup.py
-- --actors-per-domain 50, docs/performance.md "2026-12-07, late afternoon"): at CRISIS's ~900 windows a
-- second, ten cores. The counterparties had the same problem once and got rollups (011, 014);
-- this gives the actor's side the same shape:
--
-- * actor_hours: per actor and UTC hour, its windows, transactions, amount and windows with an
--   amount (as counterparty_hours per counterparty);
-- * actor_counterparty_hours: the same per actor, counterparty and hour (a window counts once per
--   distinct counterparty), for the own windows the counterparty features subtract;
-- * the hours a range only partly covers are read from actor_windows itself (at most 60 windows
--   an hour and actor, through its primary key), and the fraud labels from the windows labelled
--   fraud (actor_windows_fraud_idx, partial): whether a label counts depends on the window being
--   scored, so labels cannot be rolled up.
--
-- Kept by statement triggers on actor_windows, like 018's: inserts straight from the transition
-- table, updates and deletes as signed deltas, in key order (two scorer workers lock rollup rows in
-- the same order), TRUNCATE empties them. Rows left at zero after deletes stay (they read as zero).
-- The history query reads the same numbers (tests/streaming/test_history_lookup.py holds it to
-- the Python reference, and the rollups to a recount of actor_windows).

CREATE TABLE actor_hours (
    actor_id  text             NOT NULL,
    hour      timestamptz      NOT NULL,   -- date_trunc('hour', window_start, 'UTC')
    windows   bigint           NOT NULL,
    txns      double precision NOT NULL,
    amount    double precision NOT NULL,   -- sum of the non-NULL amount_sum
    amounts   bigint           NOT NULL,   -- windows with a non-NULL amount_sum
    PRIMARY KEY (actor_id, hour)
);

CREATE TABLE actor_counterparty_hours (
    actor_id      text             NOT NULL,
    counterparty  text             NOT NULL,
    hour          timestamptz      NOT NULL,
    windows       bigint           NOT NULL,
    txns          double precision NOT NULL,
    amount        double precision NOT NULL,
    amounts       bigint           NOT NULL,
    PRIMARY KEY (actor_id, counterparty, hour)
);

CREATE INDEX actor_windows_fraud_idx ON actor_windows (actor_id, window_start) INCLUDE (fraud_known_at)
 WHERE fraud_known_at IS NOT NULL;

INSERT INTO actor_hours (actor_id, hour, windows, txns, amount, amounts)
SELECT actor_id, date_trunc('hour', window_start, 'UTC'), count(*), sum(event_count), coalesce(sum(amount_sum), 0),
       count(amount_sum)
  FROM actor_windows GROUP BY 1, 2;

INSERT INTO actor_counterparty_hours (actor_id, counterparty, hour, windows, txns, amount, amounts)
SELECT w.actor_id, p, date_trunc('hour', w.window_start, 'UTC'), count(*), sum(w.event_count),
       coalesce(sum(w.amount_sum), 0), count(w.amount_sum)
  FROM actor_windows w, LATERAL (SELECT DISTINCT p FROM unnest(w.counterparties) p WHERE p IS NOT NULL) d
 GROUP BY 1, 2, 3;

-- A window's contribution, signed: what the update and delete paths pass on.
CREATE TYPE pa_window_delta AS (sign bigint, actor_id text, window_start timestamptz, event_count double precision,
                                amount_sum double precision, counterparties text[]);

CREATE FUNCTION pa_apply_actor_deltas(deltas pa_window_delta[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO actor_hours AS h (actor_id, hour, windows, txns, amount, amounts)
    SELECT d.actor_id, date_trunc('hour', d.window_start, 'UTC'), sum(d.sign), sum(d.sign * d.event_count),
           sum(d.sign * coalesce(d.amount_sum, 0)), sum(d.sign * (d.amount_sum IS NOT NULL)::int)
      FROM unnest(deltas) d
     GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (actor_id, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
    INSERT INTO actor_counterparty_hours AS h (actor_id, counterparty, hour, windows, txns, amount, amounts)
    SELECT d.actor_id, p, date_trunc('hour', d.window_start, 'UTC'), sum(d.sign), sum(d.sign * d.event_count),
           sum(d.sign * coalesce(d.amount_sum, 0)), sum(d.sign * (d.amount_sum IS NOT NULL)::int)
      FROM unnest(deltas) d, LATERAL (SELECT DISTINCT p FROM unnest(d.counterparties) p WHERE p IS NOT NULL) x
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (actor_id, counterparty, hour) DO UPDATE
       SET windows = h.windows + EXCLUDED.windows, txns = h.txns + EXCLUDED.txns,
           amount = h.amount + EXCLUDED.amount, amounts = h.amounts + EXCLUDED.amounts;
$$;

-- The scorer's path (new windows): the sums straight from the transition table, as 018's insert.
CREATE FUNCTION actor_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

CREATE FUNCTION actor_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_actor_deltas(array_agg(ROW(-1, w.actor_id, w.window_start, w.event_count, w.amount_sum,
                                                w.counterparties)::pa_window_delta))
       FROM old_windows w
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

-- As 018's update: a pair (by key) equal in what the history reads changes nothing (a score or a
-- label arriving, a replayed window); every other old row is taken out and every other new row put in.
CREATE FUNCTION actor_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_apply_actor_deltas(array_agg(ROW(c.sign, c.actor_id, c.window_start, c.event_count, c.amount_sum,
                                                c.counterparties)::pa_window_delta))
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
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_actor_rollups_insert AFTER INSERT ON actor_windows
REFERENCING NEW TABLE AS new_windows FOR EACH STATEMENT EXECUTE FUNCTION actor_rollups_on_insert();
CREATE TRIGGER actor_windows_actor_rollups_update AFTER UPDATE ON actor_windows
REFERENCING OLD TABLE AS old_windows NEW TABLE AS new_windows
FOR EACH STATEMENT EXECUTE FUNCTION actor_rollups_on_update();
CREATE TRIGGER actor_windows_actor_rollups_delete AFTER DELETE ON actor_windows
REFERENCING OLD TABLE AS old_windows FOR EACH STATEMENT EXECUTE FUNCTION actor_rollups_on_delete();

-- TRUNCATE fires no DELETE triggers.
CREATE FUNCTION actor_rollups_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE actor_hours, actor_counterparty_hours;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_truncate_actor_rollups AFTER TRUNCATE ON actor_windows
FOR EACH STATEMENT EXECUTE FUNCTION actor_rollups_truncate();
