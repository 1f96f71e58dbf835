-- ecommerce card_testing
-- One actor makes {{min_purchases}} purchases in a row, each under ${{max_amount}} and each from a
-- checkout session shorter than {{max_session_sec}} s, all within {{within_minutes}} minutes of
-- event time. Longer runs yield one alert per {{min_purchases}} purchases; the database groups them
-- into one incident.
-- Why MATCH_RECOGNIZE: it is a sequence over one actor's ordered events, which CEP states directly.
-- @threshold min_purchases = 5
-- @threshold max_amount = 5.0
-- @threshold max_session_sec = 60
-- @threshold within_minutes = 10
SELECT
  CONCAT('card_testing-', first_transaction_id) AS alert_id,
  'card_testing' AS `pattern`,
  'ecommerce' AS domain,
  actor_id,
  'HIGH' AS severity,
  first_event_time,
  last_event_time AS event_time,
  JSON_ARRAY(t0, t1, t2, t3, t4) AS transaction_ids,
  JSON_OBJECT(KEY 'purchases' VALUE purchases, KEY 'total_amount' VALUE total_amount,
              KEY 'max_amount' VALUE max_amount, KEY 'max_session_sec' VALUE max_session_sec) AS `measures`
-- only the columns used: a MATCH_RECOGNIZE input is not pruned by the planner, and every event
-- column crossed the keyed exchange and waited in CEP's buffer (profiled)
FROM (SELECT actor_id, transaction_id, amount, session_sec, event_time FROM events_ecommerce)
MATCH_RECOGNIZE (
  PARTITION BY actor_id
  ORDER BY event_time
  MEASURES
    FIRST(S.transaction_id) AS first_transaction_id,
    FIRST(S.transaction_id, 0) AS t0,
    FIRST(S.transaction_id, 1) AS t1,
    FIRST(S.transaction_id, 2) AS t2,
    FIRST(S.transaction_id, 3) AS t3,
    FIRST(S.transaction_id, 4) AS t4,
    FIRST(S.event_time) AS first_event_time,
    LAST(S.event_time) AS last_event_time,
    COUNT(S.transaction_id) AS purchases,
    SUM(S.amount) AS total_amount,
    MAX(S.amount) AS max_amount,
    MAX(S.session_sec) AS max_session_sec
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (S{{{min_purchases}}}) WITHIN INTERVAL '{{within_minutes}}' MINUTE
  DEFINE
    S AS S.amount < {{max_amount}} AND S.session_sec < {{max_session_sec}}
)
