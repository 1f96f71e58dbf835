-- gaming chargeback_fraud
-- A player first seen less than {{new_for_hours}} h earlier makes {{min_purchases}} credit-card
-- purchases of ${{min_amount}} or more within {{within_minutes}} minutes of event time: a fresh account
-- spending big on a card it will dispute (or a stolen one) before anyone can look. Longer runs yield
-- one alert per {{min_purchases}} purchases; the database groups them into one incident.
-- Why a keyed function, then MATCH_RECOGNIZE: "first seen" is a running minimum over all of the
-- player's history, which the gaming_history view (streaming/player_history.py, PlayerHistory.java)
-- hands each purchase, in arrival order (docs/patterns.md, "History in arrival order"), from the one
-- per-player state account_takeover's look-backs use too (it replaced an unbounded OVER window);
-- CEP has no memory beyond its WITHIN. The burst is then a sequence of the young player's big card
-- purchases, which CEP states directly; it reads only those, so the player's other purchases in
-- between do not break it.
-- State: the history holds one first-seen time per player; the number of players grows with the
-- population, not with time. The state TTL (PA_STATE_TTL_DAYS) must be longer than
-- {{new_for_hours}} h plus the longest silence we accept, or a returning player would look new
-- again. CEP buffers only big card purchases of players younger than {{new_for_hours}} h and
-- WITHIN drops a partial match after {{within_minutes}} minutes.
-- Severity HIGH: hundreds of dollars on a card from an account with no history; the chargeback
-- costs the amount plus the network's fee, and the items are usually resold at once.
-- Partition key: actor_id (the player).
-- @threshold min_purchases = 2
-- @threshold min_amount = 100.0
-- @threshold within_minutes = 60
-- @threshold new_for_hours = 24
SELECT
  CONCAT('chargeback_fraud-', first_transaction_id) AS alert_id,
  'chargeback_fraud' AS `pattern`,
  'gaming' AS domain,
  actor_id,
  'HIGH' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'purchases' VALUE purchases, KEY 'total_amount' VALUE total_amount,
              KEY 'min_amount' VALUE min_amount,
              KEY 'first_seen' VALUE DATE_FORMAT(first_seen, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
              KEY 'account_age_hours' VALUE CAST(TIMESTAMPDIFF(SECOND, first_seen, last_event_time) AS DOUBLE) / 3600)
    AS `measures`
FROM (
  SELECT actor_id, transaction_id, amount, payment_method, event_time, first_seen
  FROM gaming_history
  WHERE payment_method = 'credit_card' AND amount >= {{min_amount}}
    AND event_time < TIMESTAMPADD(HOUR, {{new_for_hours}}, first_seen)
)
MATCH_RECOGNIZE (
  PARTITION BY actor_id
  ORDER BY event_time
  MEASURES
    FIRST(C.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(C.transaction_id), ',') AS transaction_ids,
    FIRST(C.event_time) AS first_event_time,
    LAST(C.event_time) AS last_event_time,
    FIRST(C.first_seen) AS first_seen,
    COUNT(C.transaction_id) AS purchases,
    ROUND(SUM(C.amount), 2) AS total_amount,
    MIN(C.amount) AS min_amount
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (C{{{min_purchases}}}) WITHIN INTERVAL '{{within_minutes}}' MINUTE(4)
  DEFINE
    C AS C.payment_method = 'credit_card' AND C.amount >= {{min_amount}}
)
