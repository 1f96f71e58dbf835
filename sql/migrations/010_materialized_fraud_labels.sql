-- History features, fast enough for CRISIS (issue #5): each window carries when its fraud label
-- became known, so the window scorer's history query (patternalarm/history_features.py) filters
-- `fraud_known_at <= cutoff` on the rows it scans instead of calling pa_fraud_known_at() (009) on
-- each of them (thousands per key for a popular counterparty: ~1.4 s of 2.0 s per batch of 100).
--
-- fraud_known_at is pa_fraud_known_at(actor_id, window_start), kept equal to it by triggers:
-- * a window inserted gets it computed once (BEFORE INSERT; an upsert's update path keeps the
--   stored value, the scorer's UPSERT does not set it);
-- * a label arriving, changing or going away (ground truth inserted, updated or deleted; an
--   incident's fraud verdict set, moved, its time range grown, or turned to legit) recomputes it
--   for the windows of that actor overlapping the label's time range (both the old and the new
--   range), so a verdict withdrawn or given later than first recorded is undone too;
-- * counterparty_windows rows copy it from their actor_windows row (009's sync trigger, extended).
-- Known limit: a label and an overlapping window committed at the same moment by two concurrent
-- transactions do not see each other (READ COMMITTED); `SELECT pa_refresh_fraud_known_at(actor,
-- first, last)` repairs a range. In practice windows are stored minutes before verdicts, and
-- ground truth before the job has even closed the window.
--
-- Cheap on a database with many windows: the columns are added without a rewrite (nullable, no
-- default) and only windows overlapping a label are updated.

ALTER TABLE actor_windows ADD COLUMN fraud_known_at timestamptz;
ALTER TABLE counterparty_windows ADD COLUMN fraud_known_at timestamptz;

-- 009's sync, also carrying fraud_known_at (and only it, cheaply, when only it changed).
CREATE OR REPLACE FUNCTION counterparty_windows_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.counterparties IS NOT DISTINCT FROM OLD.counterparties
           AND NEW.event_count IS NOT DISTINCT FROM OLD.event_count
           AND NEW.amount_sum IS NOT DISTINCT FROM OLD.amount_sum
           AND NEW.actor_id = OLD.actor_id AND NEW.window_start = OLD.window_start THEN
            IF NEW.fraud_known_at IS DISTINCT FROM OLD.fraud_known_at THEN
                UPDATE counterparty_windows c SET fraud_known_at = NEW.fraud_known_at
                 WHERE c.counterparty = ANY (NEW.counterparties) AND c.window_start = NEW.window_start
                   AND c.actor_id = NEW.actor_id;
            END IF;
            RETURN NULL;  -- a score arriving: nothing history reads changed
        END IF;
        DELETE FROM counterparty_windows c
         WHERE c.counterparty = ANY (OLD.counterparties) AND c.window_start = OLD.window_start
           AND c.actor_id = OLD.actor_id;
    END IF;
    INSERT INTO counterparty_windows (counterparty, window_start, actor_id, txn_count, amount_sum, fraud_known_at)
    SELECT DISTINCT p, NEW.window_start, NEW.actor_id, NEW.event_count, NEW.amount_sum, NEW.fraud_known_at
      FROM unnest(NEW.counterparties) AS p
     WHERE p IS NOT NULL
    ON CONFLICT (counterparty, window_start, actor_id) DO UPDATE
       SET txn_count = EXCLUDED.txn_count, amount_sum = EXCLUDED.amount_sum,
           fraud_known_at = EXCLUDED.fraud_known_at;
    RETURN NULL;
END $$;

-- Recompute fraud_known_at for p_actor's windows overlapping [p_first, p_last] (a label's range:
-- a window [ws, ws + 1 min) overlaps it when ws > p_first - 1 min and ws <= p_last).
CREATE FUNCTION pa_refresh_fraud_known_at(p_actor text, p_first timestamptz, p_last timestamptz)
RETURNS void LANGUAGE sql AS $$
    UPDATE actor_windows w SET fraud_known_at = pa_fraud_known_at(w.actor_id, w.window_start)
     WHERE w.actor_id = p_actor AND w.window_start > p_first - interval '1 minute'
       AND w.window_start <= p_last
       AND w.fraud_known_at IS DISTINCT FROM pa_fraud_known_at(w.actor_id, w.window_start)
$$;

CREATE FUNCTION actor_windows_set_fraud_known_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.fraud_known_at := pa_fraud_known_at(NEW.actor_id, NEW.window_start);
    RETURN NEW;
END $$;

CREATE TRIGGER actor_windows_fraud_known_at
BEFORE INSERT OR UPDATE OF actor_id, window_start ON actor_windows
FOR EACH ROW EXECUTE FUNCTION actor_windows_set_fraud_known_at();

-- Ground truth arrives in bulk (COPY, executemany): one statement-level pass per statement.
CREATE FUNCTION ground_truth_relabel_windows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pa_refresh_fraud_known_at(t.actor_id, t.first_event_time, t.last_event_time)
           FROM (SELECT DISTINCT actor_id, first_event_time, last_event_time FROM old_truth) t;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pa_refresh_fraud_known_at(t.actor_id, t.first_event_time, t.last_event_time)
           FROM (SELECT DISTINCT actor_id, first_event_time, last_event_time FROM new_truth) t;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ground_truth_relabel_on_insert AFTER INSERT ON ground_truth
REFERENCING NEW TABLE AS new_truth FOR EACH STATEMENT EXECUTE FUNCTION ground_truth_relabel_windows();
CREATE TRIGGER ground_truth_relabel_on_update AFTER UPDATE ON ground_truth
REFERENCING OLD TABLE AS old_truth NEW TABLE AS new_truth
FOR EACH STATEMENT EXECUTE FUNCTION ground_truth_relabel_windows();
CREATE TRIGGER ground_truth_relabel_on_delete AFTER DELETE ON ground_truth
REFERENCING OLD TABLE AS old_truth FOR EACH STATEMENT EXECUTE FUNCTION ground_truth_relabel_windows();

-- Verdicts come one at a time (the API): row-level, and only when a fraud verdict is involved.
CREATE FUNCTION incidents_relabel_windows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pa_refresh_fraud_known_at(OLD.actor_id, OLD.first_event_time, OLD.last_event_time);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pa_refresh_fraud_known_at(NEW.actor_id, NEW.first_event_time, NEW.last_event_time);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER incidents_relabel_on_insert AFTER INSERT ON incidents
FOR EACH ROW WHEN (NEW.verdict = 'fraud') EXECUTE FUNCTION incidents_relabel_windows();
CREATE TRIGGER incidents_relabel_on_update AFTER UPDATE ON incidents
FOR EACH ROW WHEN ((OLD.verdict = 'fraud' OR NEW.verdict = 'fraud')
                   AND (OLD.actor_id, OLD.verdict, OLD.verdict_at, OLD.first_event_time, OLD.last_event_time)
                       IS DISTINCT FROM
                       (NEW.actor_id, NEW.verdict, NEW.verdict_at, NEW.first_event_time, NEW.last_event_time))
EXECUTE FUNCTION incidents_relabel_windows();
CREATE TRIGGER incidents_relabel_on_delete AFTER DELETE ON incidents
FOR EACH ROW WHEN (OLD.verdict = 'fraud') EXECUTE FUNCTION incidents_relabel_windows();

-- Windows already stored: only those overlapping a label can have one.
DO $$ BEGIN
    PERFORM pa_refresh_fraud_known_at(t.actor_id, t.first_event_time, t.last_event_time)
       FROM (SELECT actor_id, first_event_time, last_event_time FROM ground_truth
             UNION SELECT actor_id, first_event_time, last_event_time FROM incidents WHERE verdict = 'fraud') t;
END $$;
