-- Scores of actor windows, attached to alerts; severity from the rule and the score;
-- suspicious_activity alerts for high scores that no rule explains.
--
-- The detection job scores every per-actor 1-minute window through the scoring service
-- (streaming/window_scoring.py) and upserts it here with score, score_status and model_version.
-- Everything below happens in triggers, so it works whichever row arrives first (alerts and windows
-- come from two independent sink tasks) and is idempotent under replays and restarts:
--
-- * An alert's score is the highest score of its actor's windows that overlap the alert's span
--   [first_event_time, event_time]: a pattern spread over several minutes is judged by its most
--   suspicious minute. Its score_status is 'scored' once one such window is scored, 'unscored'
--   while the only covering windows are unscored (scoring service down), 'pending' while none has
--   arrived, and 'not_applicable' for alerts not keyed by an actor that has windows (iot devices,
--   the address of promo_abuse: detection_settings 'actorless_patterns').
-- * Severity = scored_severity(rule severity, score), below; the rule's own severity is kept in
--   rule_severity, so a replayed alert (the sink rewrites severity) gets the same result.
-- * An incident's severity and score follow its alerts (highest of them), also downwards.
-- * A window scored >= PA_SUSPICIOUS_THRESHOLD (the job sets `suspicious`) whose actor has no rule
--   alert within 'suspicious_margin' of it becomes a suspicious_activity alert, id derived from the
--   actor and window start (a replay rewrites nothing). A rule alert of that actor arriving later
--   (a pattern completes minutes after its first window closed) resolves the still-open, unjudged
--   suspicious_activity incident: the rule's incident carries the case from then on; the
--   suspicious_activity alert itself stays, as every alert does.

ALTER TABLE actor_windows
    ADD COLUMN score         double precision,
    ADD COLUMN score_status  text NOT NULL DEFAULT 'pending'
                             CHECK (score_status IN ('pending', 'scored', 'unscored', 'not_applicable')),
    ADD COLUMN model_version text,
    ADD COLUMN suspicious    boolean NOT NULL DEFAULT false,
    ADD COLUMN scored_at     timestamptz;

ALTER TABLE alerts ADD COLUMN rule_severity text
    CHECK (rule_severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW'));
UPDATE alerts SET rule_severity = severity;
ALTER TABLE alerts ALTER COLUMN rule_severity SET NOT NULL;
CREATE INDEX alerts_actor_time_idx ON alerts (actor_id, event_time);

INSERT INTO detection_settings (key, value, doc) VALUES
    ('actorless_patterns', 'promo_abuse',
     'Comma-separated patterns whose partition key is not an actor with feature windows: never scored'),
    ('suspicious_margin', '10 minutes',
     'A rule alert of the actor this close (event time) to a high-score window explains it: no suspicious_activity');

-- Severity from the rule and the model (docs/patterns.md, "Severity"):
--   score >= 0.9  -> one level up (LOW->MEDIUM->HIGH->CRITICAL; CRITICAL stays)
--   score <  0.1  -> one level down (CRITICAL->HIGH->MEDIUM->LOW; LOW stays)
--   otherwise, or no score (pending, unscored, not applicable) -> the rule's severity
-- The rule's evidence is deterministic, the score a second opinion: it moves severity one step,
-- never overrides the rule entirely.
CREATE FUNCTION scored_severity(rule_severity text, score double precision) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[
        LEAST(4, GREATEST(1, severity_rank(rule_severity)
                             + CASE WHEN score >= 0.9 THEN 1 WHEN score < 0.1 THEN -1 ELSE 0 END))]
$$;

CREATE FUNCTION alert_has_windows(pattern text, domain text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT domain <> 'iot' AND pattern <> ALL (
        SELECT trim(p) FROM detection_settings, unnest(string_to_array(value, ',')) AS p
         WHERE key = 'actorless_patterns')
$$;

-- Before an alert is stored (first insert, or the sink's upsert of a replayed one): score from the
-- windows already there, severity from rule and score.
CREATE FUNCTION score_alert_on_write() RETURNS trigger
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
                   AND w.window_end > NEW.first_event_time;
                NEW.score_status := CASE WHEN unscored THEN 'unscored' ELSE 'pending' END;
            END IF;
        END IF;
    END IF;
    NEW.severity := scored_severity(NEW.rule_severity, NEW.score);
    RETURN NEW;
END
$$;

CREATE TRIGGER alerts_score_on_write
BEFORE INSERT OR UPDATE ON alerts
FOR EACH ROW EXECUTE FUNCTION score_alert_on_write();

-- Incidents follow their alerts both ways: the highest severity and score among them (the 002
-- version only ever raised them, so a score that lowers a lone alert's severity left the incident
-- at the rule's level).
CREATE OR REPLACE FUNCTION propagate_alert_score() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.incident_id IS NOT NULL THEN
        UPDATE incidents i
           SET score = agg.score, severity = agg.severity, updated_at = clock_timestamp()
          FROM (SELECT max(score) AS score,
                       (array_agg(severity ORDER BY severity_rank(severity) DESC))[1] AS severity
                  FROM alerts WHERE incident_id = NEW.incident_id) agg
         WHERE i.incident_id = NEW.incident_id
           AND (i.score IS DISTINCT FROM agg.score OR i.severity <> agg.severity);
    END IF;
    RETURN NULL;
END
$$;

-- A replay during an outage must not erase a score: an unscored rewrite keeps the earlier score.
CREATE FUNCTION keep_window_score() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.score_status = 'scored' AND NEW.score_status <> 'scored' THEN
        NEW.score := OLD.score;
        NEW.score_status := OLD.score_status;
        NEW.model_version := OLD.model_version;
        NEW.suspicious := OLD.suspicious;
        NEW.scored_at := OLD.scored_at;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER actor_windows_keep_score
BEFORE UPDATE ON actor_windows
FOR EACH ROW EXECUTE FUNCTION keep_window_score();

-- After a window is stored: its score reaches the alerts it covers, and a high score that no rule
-- alert explains becomes a suspicious_activity alert.
CREATE FUNCTION attach_window_score() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    margin interval := (SELECT value::interval FROM detection_settings WHERE key = 'suspicious_margin');
BEGIN
    IF NEW.score_status = 'scored' THEN
        UPDATE alerts a
           SET score = NEW.score, model_version = NEW.model_version, score_status = 'scored'
         WHERE a.actor_id = NEW.actor_id AND a.event_time >= NEW.window_start
           AND a.first_event_time < NEW.window_end AND a.score_status <> 'not_applicable'
           AND (a.score_status <> 'scored' OR a.score < NEW.score);
    ELSIF NEW.score_status = 'unscored' THEN
        UPDATE alerts a
           SET score_status = 'unscored'
         WHERE a.actor_id = NEW.actor_id AND a.event_time >= NEW.window_start
           AND a.first_event_time < NEW.window_end AND a.score_status = 'pending';
    END IF;

    IF NEW.suspicious AND NEW.score_status = 'scored' AND NOT EXISTS (
        SELECT 1 FROM alerts a
         WHERE a.actor_id = NEW.actor_id AND a.pattern <> 'suspicious_activity'
           AND a.event_time >= NEW.window_start - margin
           AND a.first_event_time < NEW.window_end + margin) THEN
        INSERT INTO alerts (alert_id, pattern, domain, actor_id, severity, first_event_time, event_time,
                            emitted_at, transaction_ids, measures)
        VALUES ('suspicious_activity-' || NEW.actor_id || '-'
                    || to_char(NEW.window_start AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
                'suspicious_activity', NEW.domain, NEW.actor_id, 'MEDIUM',
                NEW.window_start, NEW.window_end - interval '1 millisecond', clock_timestamp(), '[]',
                jsonb_build_object('score', NEW.score, 'model_version', NEW.model_version,
                                   'window_start', NEW.window_start, 'window_end', NEW.window_end,
                                   'features', NEW.features))
        ON CONFLICT (alert_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER actor_windows_attach_score
AFTER INSERT OR UPDATE OF score, score_status, suspicious ON actor_windows
FOR EACH ROW EXECUTE FUNCTION attach_window_score();

-- A rule alert that arrives after a suspicious_activity alert of the same actor and time explains it:
-- the open, unjudged suspicious_activity incident is resolved (no verdict, so no training label).
CREATE FUNCTION supersede_suspicious_activity() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    margin interval := (SELECT value::interval FROM detection_settings WHERE key = 'suspicious_margin');
BEGIN
    IF NEW.pattern <> 'suspicious_activity' THEN
        UPDATE incidents
           SET status = 'resolved', updated_at = clock_timestamp(),
               evidence = evidence || jsonb_build_array(jsonb_build_object('superseded_by', NEW.alert_id))
         WHERE actor_id = NEW.actor_id AND pattern = 'suspicious_activity' AND status = 'open'
           AND verdict IS NULL
           AND last_event_time >= NEW.first_event_time - margin
           AND first_event_time <= NEW.event_time + margin;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER alerts_supersede_suspicious
AFTER INSERT ON alerts
FOR EACH ROW EXECUTE FUNCTION supersede_suspicious_activity();
