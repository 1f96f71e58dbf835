-- An alert's score is looked up among the windows that can overlap it, not among all of its actor's.
--
-- 004's score_alert_on_write (BEFORE INSERT on alerts: every alert the job stores) finds the
-- actor's windows overlapping the alert's span [first_event_time, event_time] with
-- `window_start <= event_time AND window_end > first_event_time`. The primary key
-- (actor_id, window_start) bounds that range above only, so the lookup read every earlier window of
-- the actor, and when none was scored the fallback (any unscored?) read them all again. With a
-- week of history, an actor active every minute has 10,080 windows: each of its alerts then took
-- 2.2 ms to store instead of 0.9 ms (streaming/bench_alert_score_lookup.py, docs/performance.md
-- "2026-12-07, morning"), in the job's alert sink.
--
-- Windows are the detection job's 1-minute tumbling windows (streaming/detection_job.py, TUMBLE
-- INTERVAL '1' MINUTE). The CHECK below makes "a window lasts at most a minute" a fact the database
-- enforces, and with it a window that overlaps the span starts after first_event_time - 1 minute:
-- the added lower bound changes no result, it only lets the index stop. A writer that stores a
-- longer window gets this constraint's name in its error instead of silently wrong scores.

ALTER TABLE actor_windows ADD CONSTRAINT actor_windows_at_most_one_minute
    CHECK (window_end > window_start AND window_end <= window_start + interval '1 minute') NOT VALID;
ALTER TABLE actor_windows VALIDATE CONSTRAINT actor_windows_at_most_one_minute;

CREATE OR REPLACE FUNCTION score_alert_on_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    best      record;
    unscored  boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.rule_severity := NEW.severity;
        IF NOT alert_has_windows(NEW.pattern, NEW.domain) THEN
            NEW.score_status := 'not_applicable';
        ELSE
            SELECT w.score, w.model_version INTO best
              FROM actor_windows w
             WHERE w.actor_id = NEW.actor_id AND w.window_start <= NEW.event_time
               AND w.window_start > NEW.first_event_time - interval '1 minute'  -- actor_windows_at_most_one_minute
               AND w.window_end > NEW.first_event_time AND w.score_status = 'scored'
             ORDER BY w.score DESC LIMIT 1;
            IF FOUND THEN
                NEW.score := best.score;
                NEW.model_version := best.model_version;
                NEW.score_status := 'scored';
            ELSE
                SELECT bool_or(w.score_status = 'unscored') INTO unscored
                  FROM actor_windows w
                 WHERE w.actor_id = NEW.actor_id AND w.window_start <= NEW.event_time
                   AND w.window_start > NEW.first_event_time - interval '1 minute'
                   AND w.window_end > NEW.first_event_time;
                NEW.score_status := CASE WHEN unscored THEN 'unscored' ELSE 'pending' END;
            END IF;
        END IF;
    END IF;
    NEW.severity := scored_severity(NEW.rule_severity, NEW.score);
    RETURN NEW;
END
$$;
