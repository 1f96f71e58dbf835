-- Window scores reach their alerts once per statement, not per row (004's attach_window_score).
--
-- The window scorer stores ~100 windows per statement; 004's row trigger ran, for each, an UPDATE of
-- the alerts it covers (and, for a high score, a look for a rule alert and an INSERT). Now one pass
-- per statement does the same for all the statement's windows, with the same rules:
-- * scored windows: each covered alert (not not_applicable) takes the highest score among the
--   statement's windows covering it, when that beats what it has (or it has none);
-- * unscored windows: covered alerts still pending become unscored;
-- * a window scored >= threshold (`suspicious`) with no rule alert of its actor within
--   'suspicious_margin' becomes a suspicious_activity alert (id from actor and window start).
-- 004's trigger fired on an UPDATE that set score, score_status or suspicious; a statement trigger
-- with transition tables cannot name columns, so an update is passed on only for the rows whose
-- score columns changed (the scorer's rewrites always do: scored_at), not for a label's
-- fraud_known_at refresh. docs/patterns.md, "Scores, severity and suspicious_activity".

DROP TRIGGER actor_windows_attach_score ON actor_windows;
DROP FUNCTION attach_window_score();

-- The windows as parallel arrays, one element per window.
CREATE FUNCTION pa_attach_window_scores(actors text[], domains text[], starts timestamptz[], ends timestamptz[],
                                        scores double precision[], statuses text[], versions text[],
                                        suspicious boolean[], features jsonb[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    margin interval := (SELECT value::interval FROM detection_settings WHERE key = 'suspicious_margin');
BEGIN
    UPDATE alerts a
       SET score = best.score, model_version = best.model_version, score_status = 'scored'
      FROM (SELECT DISTINCT ON (x.alert_id) x.alert_id, w.score, w.model_version
              FROM unnest(actors, starts, ends, scores, statuses, versions)
                   AS w(actor_id, window_start, window_end, score, status, model_version)
              JOIN alerts x ON x.actor_id = w.actor_id AND x.event_time >= w.window_start
                           AND x.first_event_time < w.window_end
             WHERE w.status = 'scored' AND x.score_status <> 'not_applicable'
             ORDER BY x.alert_id, w.score DESC) best
     WHERE a.alert_id = best.alert_id AND (a.score_status <> 'scored' OR a.score < best.score);

    UPDATE alerts a
       SET score_status = 'unscored'
      FROM unnest(actors, starts, ends, statuses) AS w(actor_id, window_start, window_end, status)
     WHERE w.status = 'unscored' AND a.actor_id = w.actor_id AND a.event_time >= w.window_start
       AND a.first_event_time < w.window_end AND a.score_status = 'pending';

    INSERT INTO alerts (alert_id, pattern, domain, actor_id, severity, first_event_time, event_time,
                        emitted_at, transaction_ids, measures)
    SELECT 'suspicious_activity-' || w.actor_id || '-'
               || to_char(w.window_start AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'),
           'suspicious_activity', w.domain, w.actor_id, 'MEDIUM',
           w.window_start, w.window_end - interval '1 millisecond', clock_timestamp(), '[]',
           jsonb_build_object('score', w.score, 'model_version', w.model_version,
                              'window_start', w.window_start, 'window_end', w.window_end,
                              'features', w.features)
      FROM unnest(actors, domains, starts, ends, scores, statuses, versions, suspicious, features)
           AS w(actor_id, domain, window_start, window_end, score, status, model_version, suspicious, features)
     WHERE w.suspicious AND w.status = 'scored' AND NOT EXISTS (
           SELECT 1 FROM alerts r
            WHERE r.actor_id = w.actor_id AND r.pattern <> 'suspicious_activity'
              AND r.event_time >= w.window_start - margin
              AND r.first_event_time < w.window_end + margin)
     ORDER BY 1
    ON CONFLICT (alert_id) DO NOTHING;
END
$$;

CREATE FUNCTION attach_window_scores_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_attach_window_scores(array_agg(w.actor_id), array_agg(w.domain), array_agg(w.window_start),
                                    array_agg(w.window_end), array_agg(w.score), array_agg(w.score_status),
                                    array_agg(w.model_version), array_agg(w.suspicious), array_agg(w.features))
       FROM new_windows w
      WHERE w.score_status IN ('scored', 'unscored')
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION attach_window_scores_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pa_attach_window_scores(array_agg(w.actor_id), array_agg(w.domain), array_agg(w.window_start),
                                    array_agg(w.window_end), array_agg(w.score), array_agg(w.score_status),
                                    array_agg(w.model_version), array_agg(w.suspicious), array_agg(w.features))
       FROM new_windows w
       LEFT JOIN old_windows o ON o.actor_id = w.actor_id AND o.window_start = w.window_start
      WHERE w.score_status IN ('scored', 'unscored')
        AND (o.actor_id IS NULL
             OR (o.score, o.score_status, o.model_version, o.suspicious, o.scored_at)
                IS DISTINCT FROM (w.score, w.score_status, w.model_version, w.suspicious, w.scored_at))
     HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER actor_windows_attach_scores_insert AFTER INSERT ON actor_windows
REFERENCING NEW TABLE AS new_windows FOR EACH STATEMENT EXECUTE FUNCTION attach_window_scores_on_insert();
CREATE TRIGGER actor_windows_attach_scores_update AFTER UPDATE ON actor_windows
REFERENCING OLD TABLE AS old_windows NEW TABLE AS new_windows
FOR EACH STATEMENT EXECUTE FUNCTION attach_window_scores_on_update();
