-- gaming gold_farming
-- One player buys in-game currency {{min_purchases}} times, each purchase under ${{max_amount}} and each
-- from a session shorter than {{max_session_sec}} s, all within {{within_minutes}} minutes of event
-- time: a bot (or a farm of them) logging in, topping up and logging out, to resell the currency or
-- to launder stolen cards through it. Longer runs yield one alert per {{min_purchases}} purchases; the
-- database groups them into one incident.
-- Why MATCH_RECOGNIZE: a run of one player's purchases in event-time order is a sequence, which CEP
-- states directly and which gives the matched purchases themselves as evidence (a windowed count
-- would fire again on every later purchase and name none). The input is pre-filtered to qualifying
-- purchases, so the player's other purchases in between do not break the run (and never enter the
-- operator).
-- State: only qualifying purchases are buffered (legit players' purchases are $5 or more, from
-- sessions of minutes), and WITHIN drops a partial match once its first purchase is
-- {{within_minutes}} minutes old: at most an hour of micro-purchases per player.
-- Severity MEDIUM: each purchase is a few dollars and no customer is harmed directly; the damage is
-- to the game economy (and, when the cards are stolen, a later run of small chargebacks).
-- Partition key: actor_id (the player).
-- @threshold min_purchases = 5
-- @threshold max_amount = 5.0
-- @threshold max_session_sec = 30
-- @threshold within_minutes = 60
SELECT
  CONCAT('gold_farming-', first_transaction_id) AS alert_id,
  'gold_farming' AS `pattern`,
  'gaming' AS domain,
  actor_id,
  'MEDIUM' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'purchases' VALUE purchases, KEY 'total_amount' VALUE total_amount,
              KEY 'max_amount' VALUE max_amount, KEY 'max_session_sec' VALUE max_session_sec,
              KEY 'span_seconds' VALUE TIMESTAMPDIFF(SECOND, first_event_time, last_event_time)) AS `measures`
FROM (
  SELECT actor_id, transaction_id, amount, session_sec, event_time
  FROM events_gaming
  WHERE item_type = 'currency'
    AND amount < {{max_amount}} AND session_sec < {{max_session_sec}}
)
MATCH_RECOGNIZE (
  PARTITION BY actor_id
  ORDER BY event_time
  MEASURES
    FIRST(G.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(G.transaction_id), ',') AS transaction_ids,
    FIRST(G.event_time) AS first_event_time,
    LAST(G.event_time) AS last_event_time,
    COUNT(G.transaction_id) AS purchases,
    ROUND(SUM(G.amount), 2) AS total_amount,
    MAX(G.amount) AS max_amount,
    MAX(G.session_sec) AS max_session_sec
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (G{{{min_purchases}}}) WITHIN INTERVAL '{{within_minutes}}' MINUTE(4)
  DEFINE
    G AS G.amount < {{max_amount}} AND G.session_sec < {{max_session_sec}}
)
