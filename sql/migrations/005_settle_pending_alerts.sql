-- Alerts whose partition key never gets a window stop waiting for a score.
--
-- An alert stays 'pending' until a window of its actor covering it arrives (004). Some never will:
-- the key of a pattern can be an account that only receives (money_laundering's SWIFT shape keyed
-- on the receiving side), so no window of its own activity exists. Windows are emitted in event-time
-- order (each closes when the watermark passes its end), so once windows ending later than an
-- alert's event_time + 'pending_settle_after' have been stored, that alert's windows would have been
-- stored too: it becomes 'not_applicable' (severity stays the rule's). The margin covers the
-- skew between the two sink tasks and the sinks' flush intervals. A window arriving after that (a
-- replay of old events) no longer changes the alert, like any not_applicable one.

INSERT INTO detection_settings (key, value, doc) VALUES
    ('pending_settle_after', '5 minutes',
     'A pending alert becomes not_applicable once windows this much later (event time) are stored');

CREATE INDEX alerts_pending_idx ON alerts (event_time) WHERE score_status = 'pending';

CREATE FUNCTION settle_pending_alerts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    settle  interval := (SELECT value::interval FROM detection_settings WHERE key = 'pending_settle_after');
    horizon timestamptz := (SELECT max(window_end) FROM stored_windows);
BEGIN
    IF horizon IS NOT NULL THEN
        UPDATE alerts SET score_status = 'not_applicable'
         WHERE score_status = 'pending' AND event_time < horizon - settle;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER actor_windows_settle_pending
AFTER INSERT ON actor_windows
REFERENCING NEW TABLE AS stored_windows
FOR EACH STATEMENT EXECUTE FUNCTION settle_pending_alerts();
