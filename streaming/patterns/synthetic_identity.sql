-- fintech synthetic_identity
-- An account first seen less than {{new_for_days}} days earlier (sending or receiving) sends
-- {{min_transfers}} transfers in a row of ${{min_amount}} to ${{max_amount}} each within
-- {{within_hours}} h of event time. Longer runs yield one alert per {{min_transfers}} transfers.
-- A run made only of transfers in structuring's band (${{structuring_min_amount}} to
-- ${{structuring_max_amount}}, kept equal to structuring's min_amount and max_amount) is left to
-- structuring: a new account that structures would otherwise raise two incidents for one behaviour.
-- Why an OVER window, then MATCH_RECOGNIZE: "first seen" is a running minimum over all of the
-- account's history, which an unbounded OVER window (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT
-- ROW) keeps as one value per account, with no time horizon; CEP has no memory beyond its WITHIN.
-- The burst itself is a sequence in the account's event-time order, which CEP states directly; it
-- reads only the new account's in-range outgoing transfers, so ordinary ones do not break it.
-- Only the rows that can matter reach that event-time window (it keeps each row until the watermark,
-- with a timer per timestamp: the job's costliest operator when every transfer entered it twice,
-- profiled): the candidates (in-range outgoing transfers) and the rows that lower the account's
-- minimum in arrival order (a cheap arrival-order OVER). A row dropped there arrived after one at
-- or before its time, so no row's event-time minimum changes without it; live, that is one row per
-- account. (Only a row behind the watermark, which every event-time operator drops, can differ:
-- arriving first, it can hide a later on-time row of an earlier time than the rest.)
-- State: the OVER window holds one MIN per account (plus the rows waiting for the watermark); the
-- number of accounts grows with the population, not with time (bounding it would take a state TTL
-- longer than {{new_for_days}} days, or an account silent that long would look new again). CEP
-- buffers only in-range transfers of accounts younger than {{new_for_days}} days (the legit
-- background stays under $5,000) and WITHIN drops a partial match after {{within_hours}} h.
-- Severity HIGH: money is leaving an account with no history fast (bust-out), a loss is imminent;
-- new customers moving their savings in do it too, so it is below money_laundering's CRITICAL.
-- Partition key: account_from, the account the money leaves.
-- @threshold min_transfers = 3
-- @threshold min_amount = 5000.0
-- @threshold max_amount = 50000.0
-- @threshold within_hours = 24
-- @threshold new_for_days = 7
-- @threshold structuring_min_amount = 9000.0
-- @threshold structuring_max_amount = 9999.99
SELECT
  CONCAT('synthetic_identity-', first_transaction_id) AS alert_id,
  'synthetic_identity' AS `pattern`,
  'fintech' AS domain,
  account AS actor_id,
  'HIGH' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'transfers' VALUE transfers, KEY 'total_amount' VALUE total_amount,
              KEY 'min_amount' VALUE smallest, KEY 'max_amount' VALUE largest,
              KEY 'first_seen' VALUE DATE_FORMAT(first_seen, 'yyyy-MM-dd''T''HH:mm:ss.SSS''Z'''),
              KEY 'account_age_hours' VALUE CAST(TIMESTAMPDIFF(MINUTE, first_seen, first_event_time) AS DOUBLE) / 60)
    AS `measures`
FROM (
  SELECT * FROM (
    SELECT account, outgoing, amount, transaction_id, event_time,
      MIN(event_time) OVER (PARTITION BY account ORDER BY event_time
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS first_seen
    FROM (
      SELECT account, outgoing, amount, transaction_id, event_time FROM (
        SELECT account, outgoing, amount, transaction_id, event_time,
          MIN(event_time) OVER (PARTITION BY account ORDER BY proc_time
                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS earliest_arrived
        FROM (
          SELECT account_from AS account, TRUE AS outgoing, amount, transaction_id, event_time, proc_time
          FROM events_fintech
          UNION ALL
          SELECT account_to AS account, FALSE AS outgoing, amount, transaction_id, event_time, proc_time
          FROM events_fintech
        )
      )
      WHERE event_time <= earliest_arrived OR (outgoing AND amount >= {{min_amount}} AND amount <= {{max_amount}})
    )
  )
  WHERE outgoing AND amount >= {{min_amount}} AND amount <= {{max_amount}}
    AND event_time < TIMESTAMPADD(DAY, {{new_for_days}}, first_seen)
)
MATCH_RECOGNIZE (
  PARTITION BY account
  ORDER BY event_time
  MEASURES
    FIRST(T.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(T.transaction_id), ',') AS transaction_ids,
    FIRST(T.event_time) AS first_event_time,
    LAST(T.event_time) AS last_event_time,
    FIRST(T.first_seen) AS first_seen,
    COUNT(T.transaction_id) AS transfers,
    ROUND(SUM(T.amount), 2) AS total_amount,
    MIN(T.amount) AS smallest,
    MAX(T.amount) AS largest
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (T{{{min_transfers}}}) WITHIN INTERVAL '{{within_hours}}' HOUR(4)
  DEFINE
    T AS T.amount >= {{min_amount}} AND T.amount <= {{max_amount}}
)
WHERE NOT (smallest >= {{structuring_min_amount}} AND largest <= {{structuring_max_amount}})
