-- fintech structuring
-- One account sends {{min_transfers}} transfers in a row, each between ${{min_amount}} and
-- ${{max_amount}} (just under the $10,000 cash-reporting line), all within {{within_hours}} h of event
-- time. Longer runs yield one alert per {{min_transfers}} transfers; the database groups them into one
-- incident.
-- Why MATCH_RECOGNIZE: a sequence of one account's transfers in event-time order is what CEP states
-- directly. The input is pre-filtered to the band, so the account's ordinary transfers in between do
-- not break the sequence (and never enter the operator).
-- State: only in-band transfers are buffered (the legit background stays under $9,000), and WITHIN
-- drops a partial match once its first transfer is {{within_hours}} h old, so each account holds at
-- most a day of in-band transfers.
-- Severity HIGH: splitting to stay under the reporting line is an offence in itself (31 U.S.C. 5324)
-- and rarely innocent, but no money is lost yet; money_laundering is the CRITICAL one.
-- Partition key: account_from, the account the money leaves (the actor of a fintech event).
-- @threshold min_transfers = 3
-- @threshold min_amount = 9000.0
-- @threshold max_amount = 9999.99
-- @threshold within_hours = 24
SELECT
  CONCAT('structuring-', first_transaction_id) AS alert_id,
  'structuring' AS `pattern`,
  'fintech' AS domain,
  account_from AS actor_id,
  'HIGH' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'transfers' VALUE transfers, KEY 'total_amount' VALUE total_amount,
              KEY 'min_amount' VALUE smallest, KEY 'max_amount' VALUE largest,
              KEY 'recipients' VALUE recipients) AS `measures`
FROM (
  SELECT account_from, account_to, amount, transaction_id, event_time
  FROM events_fintech
  WHERE amount >= {{min_amount}} AND amount <= {{max_amount}}
)
MATCH_RECOGNIZE (
  PARTITION BY account_from
  ORDER BY event_time
  MEASURES
    FIRST(S.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(S.transaction_id), ',') AS transaction_ids,
    LISTAGG(S.account_to, ',') AS recipients,
    FIRST(S.event_time) AS first_event_time,
    LAST(S.event_time) AS last_event_time,
    COUNT(S.transaction_id) AS transfers,
    ROUND(SUM(S.amount), 2) AS total_amount,
    MIN(S.amount) AS smallest,
    MAX(S.amount) AS largest
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (S{{{min_transfers}}}) WITHIN INTERVAL '{{within_hours}}' HOUR(4)
  DEFINE
    S AS S.amount >= {{min_amount}} AND S.amount <= {{max_amount}}
)
