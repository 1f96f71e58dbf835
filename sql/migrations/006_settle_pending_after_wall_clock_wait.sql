-- Settling pending alerts (005) also waits in wall-clock time.
--
-- 005 assumed windows are stored in event-time order. They are not when the watermark jumps (a
-- backlog after a restart, a replay, a far-later event): every window up to the new watermark fires
-- at once and the two sink tasks store them in any order, so a window ending minutes later in event
-- time can be stored before the alert's own window, and the alert was settled as not_applicable
-- although its window was a moment away. Both conditions now: windows 'pending_settle_after' later
-- in event time are stored AND the alert has waited 'pending_settle_wait' since it was stored. The
-- alert's window closes with the same watermark advance that emitted the alert, so the wall-clock wait
-- only has to cover the scoring micro-batch (at most PA_SCORING_MAX_WAIT_MS plus retries) and the
-- sinks' flushes.

INSERT INTO detection_settings (key, value, doc) VALUES
    ('pending_settle_wait', '2 minutes',
     'A pending alert settles only after waiting this long (wall clock) since it was stored');

DROP INDEX alerts_pending_idx;
CREATE INDEX alerts_pending_idx ON alerts (stored_at) WHERE score_status = 'pending';

CREATE OR REPLACE FUNCTION settle_pending_alerts() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    settle  interval := (SELECT value::interval FROM detection_settings WHERE key = 'pending_settle_after');
    wait    interval := (SELECT value::interval FROM detection_settings WHERE key = 'pending_settle_wait');
    horizon timestamptz := (SELECT max(window_end) FROM stored_windows);
BEGIN
    IF horizon IS NOT NULL THEN
        UPDATE alerts SET score_status = 'not_applicable'
         WHERE score_status = 'pending' AND stored_at < clock_timestamp() - wait
           AND event_time < horizon - settle;
    END IF;
    RETURN NULL;
END
$$;
