-- History features at a live 1 M events/min (issue #3): per-(counterparty, window start) rollups.
--
-- 011 reads the whole hours of a range from counterparty_hours and, for the hours a range only
-- partly covers (the "edges": the hours of ws, of the label cutoff and of every range's start,
-- up to seven distinct hours), every window of counterparty_windows. A popular counterparty of a
-- live stream is touched by hundreds of windows a minute (each of the generator's 40 games at
-- 1 M events/min): one (counterparty, ws) then read up to seven hours of those, so the scorer's
-- history query grew with the minutes into the hour and fell behind (docs/performance.md).
-- counterparty_minutes holds the same sums as counterparty_hours per (counterparty,
-- window_start), all actors of one window start in one row: an edge hour is at
-- most 60 rows for the job's 1-minute windows, whatever the counterparty's popularity. The sums
-- are the same numbers (patternalarm/history_features.py; tests hold the query to the Python
-- reference).
--
-- Kept by the trigger that keeps counterparty_hours (one PL/pgSQL call per counterparty row for
-- both rollups instead of two triggers).

CREATE TABLE counterparty_minutes (
    counterparty  text             NOT NULL,
    window_start  timestamptz      NOT NULL,
    windows       bigint           NOT NULL,
    txns          double precision NOT NULL,
    amount        double precision NOT NULL,   -- sum of the non-NULL amount_sum
    amounts       bigint           NOT NULL,   -- windows with a non-NULL amount_sum
    PRIMARY KEY (counterparty, window_start)
);

CREATE FUNCTION counterparty_rollups_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE counterparty_hours h
           SET windows = h.windows - 1, txns = h.txns - OLD.txn_count,
               amount = h.amount - COALESCE(OLD.amount_sum, 0),
               amounts = h.amounts - (OLD.amount_sum IS NOT NULL)::int
         WHERE h.counterparty = OLD.counterparty AND h.hour = date_trunc('hour', OLD.window_start, 'UTC');
        UPDATE counterparty_minutes m
           SET windows = m.windows - 1, txns = m.txns - OLD.txn_count,
               amount = m.amount - COALESCE(OLD.amount_sum, 0),
               amounts = m.amounts - (OLD.amount_sum IS NOT NULL)::int
         WHERE m.counterparty = OLD.counterparty AND m.window_start = OLD.window_start;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO counterparty_hours AS h (counterparty, hour, windows, txns, amount, amounts)
        VALUES (NEW.counterparty, date_trunc('hour', NEW.window_start, 'UTC'), 1, NEW.txn_count,
                COALESCE(NEW.amount_sum, 0), (NEW.amount_sum IS NOT NULL)::int)
        ON CONFLICT (counterparty, hour) DO UPDATE
           SET windows = h.windows + 1, txns = h.txns + EXCLUDED.txns, amount = h.amount + EXCLUDED.amount,
               amounts = h.amounts + EXCLUDED.amounts;
        INSERT INTO counterparty_minutes AS m (counterparty, window_start, windows, txns, amount, amounts)
        VALUES (NEW.counterparty, NEW.window_start, 1, NEW.txn_count,
                COALESCE(NEW.amount_sum, 0), (NEW.amount_sum IS NOT NULL)::int)
        ON CONFLICT (counterparty, window_start) DO UPDATE
           SET windows = m.windows + 1, txns = m.txns + EXCLUDED.txns, amount = m.amount + EXCLUDED.amount,
               amounts = m.amounts + EXCLUDED.amounts;
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER counterparty_windows_hours ON counterparty_windows;
DROP FUNCTION counterparty_hours_sync();
-- Not on label changes (010 updates only fraud_known_at): nothing rolled up changes.
CREATE TRIGGER counterparty_windows_rollups
AFTER INSERT OR DELETE OR UPDATE OF counterparty, window_start, txn_count, amount_sum ON counterparty_windows
FOR EACH ROW EXECUTE FUNCTION counterparty_rollups_sync();

INSERT INTO counterparty_minutes (counterparty, window_start, windows, txns, amount, amounts)
SELECT counterparty, window_start, count(*), sum(txn_count), COALESCE(sum(amount_sum), 0), count(amount_sum)
  FROM counterparty_windows
 GROUP BY 1, 2;

-- TRUNCATE fires no row triggers: the rollups follow the truncated windows (011).
CREATE OR REPLACE FUNCTION counterparty_windows_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE counterparty_windows, counterparty_hours, counterparty_minutes;
    RETURN NULL;
END $$;
