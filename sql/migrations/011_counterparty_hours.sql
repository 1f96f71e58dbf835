-- History features, fast enough for CRISIS (issue #5), part 2: per-(counterparty, hour) rollups.
--
-- A popular counterparty (a game, a big merchant, a terminal) is touched by thousands of windows a
-- week; scanning them per key was most of what remained of the history query once labels were
-- materialized (010). counterparty_hours holds, per counterparty and UTC hour, the windows, their
-- transactions and amount (amount_sum NULLs left out, `amounts` counts the others) of
-- counterparty_windows, kept by a trigger. The query (patternalarm/history_features.py) reads the
-- whole hours of a range from here and the windows of the hours a range only partly covers from
-- counterparty_windows, so a 7-day range costs ~170 rollup rows plus at most two hours of windows.
-- Fraud counts are not rolled up (whether a label counts depends on the window being scored): they
-- come from the few fraud rows through counterparty_windows_fraud_idx.

CREATE TABLE counterparty_hours (
    counterparty  text             NOT NULL,
    hour          timestamptz      NOT NULL,   -- date_trunc('hour', window_start, 'UTC')
    windows       bigint           NOT NULL,
    txns          double precision NOT NULL,
    amount        double precision NOT NULL,   -- sum of the non-NULL amount_sum
    amounts       bigint           NOT NULL,   -- windows with a non-NULL amount_sum
    PRIMARY KEY (counterparty, hour)
);

CREATE FUNCTION counterparty_hours_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE counterparty_hours h
           SET windows = h.windows - 1, txns = h.txns - OLD.txn_count,
               amount = h.amount - COALESCE(OLD.amount_sum, 0),
               amounts = h.amounts - (OLD.amount_sum IS NOT NULL)::int
         WHERE h.counterparty = OLD.counterparty AND h.hour = date_trunc('hour', OLD.window_start, 'UTC');
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO counterparty_hours AS h (counterparty, hour, windows, txns, amount, amounts)
        VALUES (NEW.counterparty, date_trunc('hour', NEW.window_start, 'UTC'), 1, NEW.txn_count,
                COALESCE(NEW.amount_sum, 0), (NEW.amount_sum IS NOT NULL)::int)
        ON CONFLICT (counterparty, hour) DO UPDATE
           SET windows = h.windows + 1, txns = h.txns + EXCLUDED.txns, amount = h.amount + EXCLUDED.amount,
               amounts = h.amounts + EXCLUDED.amounts;
    END IF;
    RETURN NULL;
END $$;

-- Not on label changes (010 updates only fraud_known_at): nothing rolled up changes.
CREATE TRIGGER counterparty_windows_hours
AFTER INSERT OR DELETE OR UPDATE OF counterparty, window_start, txn_count, amount_sum ON counterparty_windows
FOR EACH ROW EXECUTE FUNCTION counterparty_hours_sync();

INSERT INTO counterparty_hours (counterparty, hour, windows, txns, amount, amounts)
SELECT counterparty, date_trunc('hour', window_start, 'UTC'), count(*), sum(txn_count),
       COALESCE(sum(amount_sum), 0), count(amount_sum)
  FROM counterparty_windows
 GROUP BY 1, 2;

-- The fraud rows of a counterparty (a few percent), read without visiting the others.
CREATE INDEX counterparty_windows_fraud_idx ON counterparty_windows (counterparty, window_start)
    INCLUDE (actor_id, fraud_known_at) WHERE fraud_known_at IS NOT NULL;

-- A window deleted leaves history (009's sync only followed inserts and updates).
CREATE FUNCTION counterparty_windows_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM counterparty_windows c
     WHERE c.counterparty = ANY (OLD.counterparties) AND c.window_start = OLD.window_start
       AND c.actor_id = OLD.actor_id;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_forget_counterparties
AFTER DELETE ON actor_windows
FOR EACH ROW EXECUTE FUNCTION counterparty_windows_forget();

-- TRUNCATE fires no row or DELETE triggers (tests and resets use it): what derives from the
-- truncated table follows here.
CREATE FUNCTION counterparty_windows_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE counterparty_windows, counterparty_hours;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_truncate_counterparties
AFTER TRUNCATE ON actor_windows
FOR EACH STATEMENT EXECUTE FUNCTION counterparty_windows_truncate();

-- Labels truncated: only windows that had one can change (010's fraud_known_at).
CREATE FUNCTION labels_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE actor_windows w SET fraud_known_at = pa_fraud_known_at(w.actor_id, w.window_start)
     WHERE w.fraud_known_at IS NOT NULL
       AND w.fraud_known_at IS DISTINCT FROM pa_fraud_known_at(w.actor_id, w.window_start);
    RETURN NULL;
END $$;

CREATE TRIGGER ground_truth_truncated AFTER TRUNCATE ON ground_truth
FOR EACH STATEMENT EXECUTE FUNCTION labels_truncated();
CREATE TRIGGER incidents_truncated AFTER TRUNCATE ON incidents
FOR EACH STATEMENT EXECUTE FUNCTION labels_truncated();
