-- Every decision of the retraining DAG (dags/fraud_model_retrain.py): which registered version it
-- trained, what the gate decided, the metrics it decided on and who/what started the run. The
-- registry's aliases say what serves now; this table says how it got there.
CREATE TABLE model_deployments (
    deployment_id  bigserial PRIMARY KEY,
    model_name     text        NOT NULL,
    version        text        NOT NULL,                 -- MLflow registered model version
    alias          text,                                 -- alias moved onto it: champion, challenger or none
    decided        text        NOT NULL CHECK (decided IN ('promoted', 'challenger', 'refused')),
    metrics        jsonb       NOT NULL DEFAULT '{}',    -- gate backtest of new and champion, margin
    triggered_by   text        NOT NULL,                 -- e.g. "scheduled", "manual:alice", "make retrain"
    run_id         text,                                 -- Airflow dag run id (idempotent re-runs)
    serving        text,                                 -- outcome of the reload / health check
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (run_id, version)
);
CREATE INDEX model_deployments_created_idx ON model_deployments (created_at DESC);
