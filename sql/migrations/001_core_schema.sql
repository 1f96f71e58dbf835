-- Core schema: alerts from the detection job, incidents that group them, ground truth, verdicts.
-- Applied once by the migration runner (patternalarm/stack/migrations.py), inside a transaction.

-- Alerts are written by Flink's JDBC sink as upserts keyed by a deterministic alert_id, so a replay
-- or a restart from a checkpoint rewrites the same rows instead of adding new ones.
CREATE TABLE alerts (
    alert_id          text PRIMARY KEY,
    pattern           text        NOT NULL,
    domain            text        NOT NULL,
    actor_id          text        NOT NULL,           -- the partition key (actor, account, address, device)
    severity          text        NOT NULL CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    score             double precision,               -- fraud probability from the scoring service
    score_status      text        NOT NULL DEFAULT 'pending'
                      CHECK (score_status IN ('pending', 'scored', 'unscored', 'not_applicable')),
    model_version     text,
    first_event_time  timestamptz NOT NULL,
    event_time        timestamptz NOT NULL,           -- the event that completed the pattern
    emitted_at        timestamptz NOT NULL,           -- when the job emitted the alert
    stored_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    transaction_ids   jsonb       NOT NULL DEFAULT '[]',
    measures          jsonb       NOT NULL DEFAULT '{}',
    incident_id       text
);
CREATE INDEX alerts_incident_idx ON alerts (incident_id);
CREATE INDEX alerts_stored_at_idx ON alerts (stored_at);
CREATE INDEX alerts_pattern_actor_idx ON alerts (pattern, actor_id, event_time);

CREATE TABLE incidents (
    incident_id       text PRIMARY KEY,
    pattern           text        NOT NULL,
    domain            text        NOT NULL,
    actor_id          text        NOT NULL,
    severity          text        NOT NULL CHECK (severity IN ('CRITICAL', 'HIGH', 'MEDIUM', 'LOW')),
    score             double precision,
    first_event_time  timestamptz NOT NULL,
    last_event_time   timestamptz NOT NULL,
    alert_count       integer     NOT NULL DEFAULT 1,
    evidence          jsonb       NOT NULL DEFAULT '[]',  -- [{alert_id, transaction_ids, measures}]
    status            text        NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'acknowledged', 'resolved')),
    verdict           text        CHECK (verdict IN ('fraud', 'legit')),
    verdict_note      text,
    verdict_by        text,
    verdict_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX incidents_filter_idx ON incidents (domain, pattern, severity, status);
CREATE INDEX incidents_last_event_idx ON incidents (last_event_time DESC);
CREATE INDEX incidents_group_idx ON incidents (actor_id, pattern, last_event_time);

-- Every verdict an analyst gives, in order: the incidents row keeps the latest, this keeps history.
-- These rows are the labels the retraining DAG reads.
CREATE TABLE incident_verdicts (
    verdict_id   bigserial PRIMARY KEY,
    incident_id  text        NOT NULL REFERENCES incidents (incident_id),
    verdict      text        NOT NULL CHECK (verdict IN ('fraud', 'legit')),
    note         text,
    analyst      text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX incident_verdicts_incident_idx ON incident_verdicts (incident_id);

-- What the generator injected, recorded apart from the events so detection cannot read the answer.
CREATE TABLE ground_truth (
    instance_id       text PRIMARY KEY,
    run_id            text        NOT NULL,
    pattern           text        NOT NULL,
    domain            text        NOT NULL,
    actor_id          text        NOT NULL,               -- partition key the pattern is detected on
    transaction_ids   jsonb       NOT NULL,
    first_event_time  timestamptz NOT NULL,
    last_event_time   timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ground_truth_run_idx ON ground_truth (run_id, pattern);

-- Per-actor windowed aggregates (the model's features), one row per actor and window.
CREATE TABLE actor_windows (
    actor_id      text        NOT NULL,
    domain        text        NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    event_count   bigint      NOT NULL,
    amount_sum    double precision,
    features      jsonb       NOT NULL DEFAULT '{}',
    stored_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (actor_id, window_start)
);
CREATE INDEX actor_windows_end_idx ON actor_windows (window_end);

-- Job throughput, one row per 10-second window of processing: what `make demo` and `status` show.
CREATE TABLE stream_throughput (
    window_start    timestamptz NOT NULL PRIMARY KEY,
    window_end      timestamptz NOT NULL,
    valid_events    bigint      NOT NULL,
    invalid_events  bigint      NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
