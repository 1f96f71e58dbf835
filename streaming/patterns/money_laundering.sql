-- fintech money_laundering, two shapes in one file, so that the pattern name, PA_PATTERNS, the
-- PA_RULE_MONEY_LAUNDERING_* variables, the scenario and the ground truth all say money_laundering.
--
-- Both read the account's transfers from both sides: every fintech transfer once as incoming (keyed
-- by account_to) and once as outgoing (keyed by account_from), so one partition holds everything
-- that enters and leaves an account. (Written out twice: the job defines its alerts as a view, and
-- Flink's parser refuses a WITH nested in CREATE VIEW; the planner reuses the one source anyway.)
--
-- 1. Pass-through: an account receives one transfer of at least ${{passthrough_min_received}}, then
--    within {{passthrough_within_minutes}} minutes sends at least {{passthrough_min_share}} of that
--    amount on, in one or more outgoing transfers of at least ${{passthrough_min_chunk}} each, none of
--    them back to the sender (a refund is not a pass-through). Partition key: the intermediate
--    account. Transfers below ${{passthrough_min_chunk}} are not counted (they never enter the
--    operator); lowering it to 0 closes that gap at the cost of every outgoing transfer reaching CEP.
-- 2. High-risk SWIFT: {{swift_min_transfers}} SWIFT transfers of at least ${{swift_min_amount}} each
--    into or out of one account, each from or to a high-risk country ({{high_risk_countries}}), within
--    {{swift_within_minutes}} minutes. Partition key: that account.
--
-- Why MATCH_RECOGNIZE: both are sequences in one account's event-time order (received, then sent on;
-- three in a row), which CEP states directly, the running sum of forwarded chunks included. The
-- input is pre-filtered to the transfers that can take part, so unrelated ones neither break the
-- sequence nor enter the operator.
-- State: the legit background never reaches these amounts or SWIFT, so only suspicious transfers are
-- buffered; WITHIN drops a partial match {{passthrough_within_minutes}} / {{swift_within_minutes}}
-- minutes after its first transfer, so an account holds at most an hour of them.
-- Severity CRITICAL: large sums already moved through the institution, with regulatory exposure (a
-- suspicious activity report is due); the other fintech patterns are HIGH.
-- Alert ids name the shape; the SWIFT one also names the account, because one transfer is seen from
-- both of its accounts.
-- @threshold passthrough_min_received = 50000.0
-- @threshold passthrough_min_share = 0.9
-- @threshold passthrough_min_chunk = 5000.0
-- @threshold passthrough_within_minutes = 60
-- @threshold swift_min_transfers = 3
-- @threshold swift_min_amount = 50000.0
-- @threshold swift_within_minutes = 60
-- @threshold high_risk_countries = KY,PA,BZ,VG
SELECT
  CONCAT('money_laundering-passthrough-', first_transaction_id) AS alert_id,
  'money_laundering' AS `pattern`,
  'fintech' AS domain,
  account AS actor_id,
  'CRITICAL' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', JSON_STRING(first_transaction_id), COALESCE(CONCAT(',', chunk_ids), ''), ',',
         JSON_STRING(last_transaction_id), ']') AS transaction_ids,
  JSON_OBJECT(KEY 'shape' VALUE 'passthrough', KEY 'received' VALUE received, KEY 'sender' VALUE sender,
              KEY 'forwarded' VALUE forwarded, KEY 'forwarded_share' VALUE forwarded / received,
              KEY 'forwards' VALUE forwards,
              KEY 'minutes' VALUE CAST(TIMESTAMPDIFF(SECOND, first_event_time, last_event_time) AS DOUBLE) / 60) AS `measures`
FROM (
  SELECT * FROM (
    SELECT account_to AS account, 'IN' AS direction, account_from AS counterparty, amount, transfer_type,
      country_from, country_to, transaction_id, event_time
    FROM events_fintech
    UNION ALL
    SELECT account_from AS account, 'OUT' AS direction, account_to AS counterparty, amount, transfer_type,
      country_from, country_to, transaction_id, event_time
    FROM events_fintech
  )
  WHERE (direction = 'IN' AND amount >= {{passthrough_min_received}})
     OR (direction = 'OUT' AND amount >= {{passthrough_min_chunk}})
)
MATCH_RECOGNIZE (
  PARTITION BY account
  ORDER BY event_time
  MEASURES
    R.transaction_id AS first_transaction_id,
    LISTAGG(JSON_STRING(C.transaction_id), ',') AS chunk_ids,
    F.transaction_id AS last_transaction_id,
    R.event_time AS first_event_time,
    F.event_time AS last_event_time,
    R.amount AS received,
    R.counterparty AS sender,
    ROUND(COALESCE(SUM(C.amount), 0) + F.amount, 2) AS forwarded,
    COUNT(C.transaction_id) + 1 AS forwards
  AFTER MATCH SKIP PAST LAST ROW
  -- R: received; C: forwarded chunks before the one that completes the share; F: that one
  PATTERN (R C*? F) WITHIN INTERVAL '{{passthrough_within_minutes}}' MINUTE(6)
  DEFINE
    R AS R.direction = 'IN' AND R.amount >= {{passthrough_min_received}},
    C AS C.direction = 'OUT' AND C.counterparty <> R.counterparty,
    F AS F.direction = 'OUT' AND F.counterparty <> R.counterparty
         AND COALESCE(SUM(C.amount), 0) + F.amount >= {{passthrough_min_share}} * R.amount
)
UNION ALL
SELECT
  CONCAT('money_laundering-swift-', account, '-', first_transaction_id) AS alert_id,
  'money_laundering' AS `pattern`,
  'fintech' AS domain,
  account AS actor_id,
  'CRITICAL' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'shape' VALUE 'swift_high_risk', KEY 'transfers' VALUE transfers,
              KEY 'total_amount' VALUE total_amount, KEY 'min_amount' VALUE smallest,
              KEY 'outgoing' VALUE outgoing, KEY 'countries' VALUE countries) AS `measures`
FROM (
  SELECT *, CASE WHEN UPPER(country_from) IN ({{high_risk_countries}}) THEN UPPER(country_from)
                 ELSE UPPER(country_to) END AS risk_country
  FROM (
    SELECT account_to AS account, 'IN' AS direction, account_from AS counterparty, amount, transfer_type,
      country_from, country_to, transaction_id, event_time
    FROM events_fintech
    UNION ALL
    SELECT account_from AS account, 'OUT' AS direction, account_to AS counterparty, amount, transfer_type,
      country_from, country_to, transaction_id, event_time
    FROM events_fintech
  )
  WHERE transfer_type = 'SWIFT' AND amount >= {{swift_min_amount}}
    AND (UPPER(country_from) IN ({{high_risk_countries}}) OR UPPER(country_to) IN ({{high_risk_countries}}))
)
MATCH_RECOGNIZE (
  PARTITION BY account
  ORDER BY event_time
  MEASURES
    FIRST(W.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(W.transaction_id), ',') AS transaction_ids,
    FIRST(W.event_time) AS first_event_time,
    LAST(W.event_time) AS last_event_time,
    COUNT(W.transaction_id) AS transfers,
    ROUND(SUM(W.amount), 2) AS total_amount,
    MIN(W.amount) AS smallest,
    SUM(CASE WHEN W.direction = 'OUT' THEN 1 ELSE 0 END) AS outgoing,
    LISTAGG(W.risk_country, ',') AS countries
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (W{{{swift_min_transfers}}}) WITHIN INTERVAL '{{swift_within_minutes}}' MINUTE(6)
  DEFINE
    W AS W.transfer_type = 'SWIFT' AND W.amount >= {{swift_min_amount}} AND W.risk_country IS NOT NULL
)
