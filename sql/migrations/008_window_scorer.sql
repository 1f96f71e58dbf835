-- Windows are scored outside the detection job (streaming/window_scorer.py).
--
-- The job publishes each per-actor 1-minute window to PA_TOPIC_WINDOWS; the window scorer consumes
-- it, scores micro-batches through POST /predict/batch and upserts the windows here with their score:
-- it is the only writer of actor_windows. Scoring is thereby off the alert path (a slow or absent
-- scoring service no longer backpressures the job's source), and windows stored `unscored` during an
-- outage are scored again later from the features kept here.
--
-- counterparties: the window's distinct counterparties (merchants, recipient accounts, ...), for
-- the counterparty history features; empty for windows without any (iot).

ALTER TABLE actor_windows ADD COLUMN counterparties text[] NOT NULL DEFAULT '{}';

-- The rescoring pass reads the newest unscored windows first.
CREATE INDEX actor_windows_unscored_idx ON actor_windows (stored_at DESC) WHERE score_status = 'unscored';
