-- History features (patternalarm/history_features.py): what the window scorer's one query per
-- micro-batch (streaming/history_lookup.py) reads besides actor_windows.
--
-- counterparty_windows: actor_windows unnested by counterparty (migration 008's counterparties), kept
-- by a trigger, so "other actors' windows touching counterparty c in the last 7 days" is one range
-- scan of (counterparty, window_start) instead of a scan of every window.
--
-- pa_fraud_known_at(actor, window_start): when the window's fraud label became known, NULL if it is
-- not fraud (as far as anyone knows): the window's end when ground truth (the delayed chargebacks
-- of a real operation; the retrain's unalerted sample is labelled from it too) covers it, the
-- fraud verdict's time for an incident of the actor overlapping it (never before the window's end),
-- whichever is first. The history query counts a label only if known PA_LABEL_DELAY_MIN before the
-- window being scored starts.

CREATE TABLE counterparty_windows (
    counterparty  text             NOT NULL,
    window_start  timestamptz      NOT NULL,
    actor_id      text             NOT NULL,
    txn_count     double precision NOT NULL,
    amount_sum    double precision,
    PRIMARY KEY (counterparty, window_start, actor_id)
);

CREATE FUNCTION counterparty_windows_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.counterparties IS NOT DISTINCT FROM OLD.counterparties
           AND NEW.event_count IS NOT DISTINCT FROM OLD.event_count
           AND NEW.amount_sum IS NOT DISTINCT FROM OLD.amount_sum THEN
            RETURN NULL;  -- a score arriving: nothing history reads changed
        END IF;
        DELETE FROM counterparty_windows c
         WHERE c.counterparty = ANY (OLD.counterparties) AND c.window_start = OLD.window_start
           AND c.actor_id = OLD.actor_id;
    END IF;
    INSERT INTO counterparty_windows (counterparty, window_start, actor_id, txn_count, amount_sum)
    SELECT DISTINCT p, NEW.window_start, NEW.actor_id, NEW.event_count, NEW.amount_sum
      FROM unnest(NEW.counterparties) AS p
     WHERE p IS NOT NULL
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE
       SET txn_count = EXCLUDED.txn_count, amount_sum = EXCLUDED.amount_sum;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_counterparties
AFTER INSERT OR UPDATE ON actor_windows
FOR EACH ROW EXECUTE FUNCTION counterparty_windows_sync();

-- Windows already stored (008 gave them '{}', so this only matters where a writer filled them).
INSERT INTO counterparty_windows (counterparty, window_start, actor_id, txn_count, amount_sum)
SELECT DISTINCT p, w.window_start, w.actor_id, w.event_count, w.amount_sum
  FROM actor_windows w, unnest(w.counterparties) AS p
 WHERE p IS NOT NULL
ON CONFLICT DO NOTHING;

CREATE INDEX ground_truth_actor_time_idx ON ground_truth (actor_id, first_event_time);
CREATE INDEX incidents_fraud_actor_idx ON incidents (actor_id, first_event_time) WHERE verdict = 'fraud';

CREATE FUNCTION pa_fraud_known_at(p_actor text, p_start timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT LEAST(
        (SELECT p_start + interval '1 minute' FROM ground_truth g
          WHERE g.actor_id = p_actor AND g.first_event_time < p_start + interval '1 minute'
            AND g.last_event_time >= p_start
          LIMIT 1),
        (SELECT GREATEST(p_start + interval '1 minute', MIN(i.verdict_at)) FROM incidents i
          WHERE i.actor_id = p_actor AND i.verdict = 'fraud'
            AND i.first_event_time < p_start + interval '1 minute' AND i.last_event_time >= p_start
         HAVING COUNT(*) > 0))  -- no row, not GREATEST(end, NULL) = end, when there is no verdict
$$;
