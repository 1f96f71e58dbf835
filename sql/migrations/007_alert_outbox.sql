-- Alerts made in the database reach the alerts topic too, through a transactional outbox.
--
-- The detection job publishes the alerts it emits to pa.alerts itself. suspicious_activity alerts are
-- made here instead (004: only the database sees both a window's score and every rule alert), so the
-- insert that creates one also queues it in alert_outbox, in the same transaction: it is queued if and
-- only if it exists. streaming/alert_outbox_relay.py (the stack's alert-relay service) publishes queued
-- rows in order and marks them published; a crash between publishing and marking publishes a row again,
-- which is the topic's at-least-once, as for the job's alerts. The payload has the shape the job writes
-- (Flink's JSON format: SQL timestamps, transaction_ids and measures as JSON text).

CREATE TABLE alert_outbox (
    outbox_id     bigserial PRIMARY KEY,
    alert_id      text        NOT NULL,
    actor_id      text        NOT NULL,                -- the Kafka key, as the job's alerts
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz
);
CREATE INDEX alert_outbox_unpublished_idx ON alert_outbox (outbox_id) WHERE published_at IS NULL;

CREATE FUNCTION flink_sql_timestamp(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')
$$;

CREATE FUNCTION queue_alert_for_topic() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alert_outbox (alert_id, actor_id, payload)
    VALUES (NEW.alert_id, NEW.actor_id, jsonb_build_object(
        'alert_id', NEW.alert_id, 'pattern', NEW.pattern, 'domain', NEW.domain, 'actor_id', NEW.actor_id,
        'severity', NEW.severity, 'first_event_time', flink_sql_timestamp(NEW.first_event_time),
        'event_time', flink_sql_timestamp(NEW.event_time), 'emitted_at', flink_sql_timestamp(NEW.emitted_at),
        'transaction_ids', NEW.transaction_ids::text, 'measures', NEW.measures::text));
    RETURN NULL;
END
$$;

-- Only on a first insert: a replayed window finds its alert already there (ON CONFLICT DO NOTHING).
CREATE TRIGGER alerts_queue_for_topic
AFTER INSERT ON alerts
FOR EACH ROW WHEN (NEW.pattern = 'suspicious_activity')
EXECUTE FUNCTION queue_alert_for_topic();
