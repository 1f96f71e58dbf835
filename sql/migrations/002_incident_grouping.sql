-- Incident grouping lives next to the data it guards: an alert that is inserted for the first time
-- joins the open incident of the same (actor, pattern) whose last event lies within the grouping
-- window, or opens a new one. Re-inserting the same alert (replay, restart) is an upsert conflict,
-- not an insert, so it never touches incidents again: alerts and incidents stay exactly-once.

CREATE TABLE detection_settings (
    key    text PRIMARY KEY,
    value  text NOT NULL,
    doc    text NOT NULL
);
INSERT INTO detection_settings (key, value, doc) VALUES
    ('incident_window', '30 minutes',
     'Alerts of one actor and pattern closer than this (event time) join the same open incident');

CREATE FUNCTION severity_rank(severity text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE severity WHEN 'CRITICAL' THEN 4 WHEN 'HIGH' THEN 3 WHEN 'MEDIUM' THEN 2 ELSE 1 END
$$;

CREATE FUNCTION higher_severity(a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN severity_rank(a) >= severity_rank(b) THEN a ELSE b END
$$;

CREATE FUNCTION alert_evidence(a alerts) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('alert_id', a.alert_id, 'transaction_ids', a.transaction_ids,
                              'measures', a.measures, 'event_time', a.event_time)
$$;

CREATE FUNCTION group_alert_into_incident() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    window_len interval := (SELECT value::interval FROM detection_settings WHERE key = 'incident_window');
    target     text;
BEGIN
    -- Serialise grouping per (actor, pattern): two sink tasks must not open two incidents at once.
    PERFORM pg_advisory_xact_lock(hashtextextended(NEW.actor_id || '|' || NEW.pattern, 0));

    SELECT incident_id INTO target
      FROM incidents
     WHERE actor_id = NEW.actor_id AND pattern = NEW.pattern AND status <> 'resolved'
       AND NEW.first_event_time <= last_event_time + window_len
       AND NEW.event_time >= first_event_time - window_len
     ORDER BY last_event_time DESC
     LIMIT 1;

    IF target IS NULL THEN
        target := 'inc-' || NEW.alert_id;
        INSERT INTO incidents (incident_id, pattern, domain, actor_id, severity, score,
                               first_event_time, last_event_time, alert_count, evidence)
        VALUES (target, NEW.pattern, NEW.domain, NEW.actor_id, NEW.severity, NEW.score,
                NEW.first_event_time, NEW.event_time, 1, jsonb_build_array(alert_evidence(NEW)));
    ELSE
        UPDATE incidents
           SET severity         = higher_severity(severity, NEW.severity),
               score            = GREATEST(score, NEW.score),
               first_event_time = LEAST(first_event_time, NEW.first_event_time),
               last_event_time  = GREATEST(last_event_time, NEW.event_time),
               alert_count      = alert_count + 1,
               evidence         = evidence || jsonb_build_array(alert_evidence(NEW)),
               updated_at       = clock_timestamp()
         WHERE incident_id = target;
    END IF;

    UPDATE alerts SET incident_id = target WHERE alert_id = NEW.alert_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER alerts_group_into_incidents
AFTER INSERT ON alerts
FOR EACH ROW EXECUTE FUNCTION group_alert_into_incident();

-- A later score (or a severity raised by it) flows into the incident; max() keeps this idempotent.
CREATE FUNCTION propagate_alert_score() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.incident_id IS NOT NULL THEN
        UPDATE incidents
           SET score      = GREATEST(score, NEW.score),
               severity   = higher_severity(severity, NEW.severity),
               updated_at = clock_timestamp()
         WHERE incident_id = NEW.incident_id
           AND (score IS DISTINCT FROM GREATEST(score, NEW.score)
                OR severity <> higher_severity(severity, NEW.severity));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER alerts_propagate_score
AFTER UPDATE OF score, severity ON alerts
FOR EACH ROW WHEN (NEW.score IS DISTINCT FROM OLD.score OR NEW.severity <> OLD.severity)
EXECUTE FUNCTION propagate_alert_score();
