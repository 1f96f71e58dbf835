-- ecommerce friendly_fraud
-- An actor with no purchase in the previous {{quiet_days}} days (a new or long-dormant account) makes
-- {{min_purchases}} purchases over ${{min_amount}} whose cart holds electronics within
-- {{within_minutes}} minutes of event time: resellable goods bought in a burst by an account with no
-- track record, to be disputed later as "not received" or "not me". The rest of the burst is not a
-- new alert (those purchases have a recent purchase before them).
-- Why an OVER window, then MATCH_RECOGNIZE: "no purchase in the previous 30 days" looks back before
-- the burst, where a pattern cannot see (its first row has no predecessor in the match), so an OVER
-- window hands each purchase the time of the actor's previous one (previous_time, LAG for a ROWS
-- frame; in arrival order: docs/patterns.md, "History in arrival order"); none, or one more than
-- {{quiet_days}} days earlier, means the actor was quiet. The burst is then a sequence of the actor's
-- big electronics purchases, which CEP states directly; it reads only those, so the actor's other
-- purchases in between do not break it.
-- State: the OVER window keeps two timestamps per actor (previous_time's accumulator), cleared by the state TTL
-- (PA_STATE_TTL_DAYS, which must be at least {{quiet_days}}: an actor forgotten after TTL days of
-- silence then counts as quiet, which it was). A RANGE window over {{quiet_days}} days, which this
-- replaces, kept every purchase of the last 30 days: millions of rows on the heap at CRISIS and a
-- third of the job's garbage-collection time (profiled). CEP buffers only big electronics purchases
-- and WITHIN drops a partial match after {{within_minutes}} minutes.
-- Severity HIGH: over $1,000 of resellable goods shipped to an account with no history, and the
-- loss lands weeks later as a chargeback the merchant usually loses.
-- Partition key: actor_id (the customer).
-- @threshold min_purchases = 2
-- @threshold min_amount = 500.0
-- @threshold within_minutes = 60
-- @threshold quiet_days = 30
SELECT
  CONCAT('friendly_fraud-', first_transaction_id) AS alert_id,
  'friendly_fraud' AS `pattern`,
  'ecommerce' AS domain,
  actor_id,
  'HIGH' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'purchases' VALUE purchases, KEY 'total_amount' VALUE total_amount,
              KEY 'min_amount' VALUE min_amount,
              KEY 'span_seconds' VALUE TIMESTAMPDIFF(SECOND, first_event_time, last_event_time)) AS `measures`
FROM (
  SELECT * FROM (
    SELECT actor_id, transaction_id, amount, cart_has_electronics, event_time, big_electronics,
      previous_time(event_time) OVER (PARTITION BY actor_id ORDER BY proc_time
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS previous_purchase
    -- The test computed below the OVER window keeps a projection there: with only a filter above
    -- it, the planner gave the window (its keyed exchange and its state) every event column (profiled).
    FROM (SELECT actor_id, transaction_id, amount, cart_has_electronics, event_time, proc_time,
            amount > {{min_amount}} AND cart_has_electronics AS big_electronics
          FROM events_ecommerce)
  )
  WHERE big_electronics
)
MATCH_RECOGNIZE (
  PARTITION BY actor_id
  ORDER BY event_time
  MEASURES
    FIRST(P.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(P.transaction_id), ',') AS transaction_ids,
    FIRST(P.event_time) AS first_event_time,
    LAST(P.event_time) AS last_event_time,
    COUNT(P.transaction_id) AS purchases,
    ROUND(SUM(P.amount), 2) AS total_amount,
    MIN(P.amount) AS min_amount
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (P{{{min_purchases}}}) WITHIN INTERVAL '{{within_minutes}}' MINUTE(4)
  DEFINE
    P AS P.amount > {{min_amount}} AND P.cart_has_electronics
         AND (FIRST(P.previous_purchase) IS NULL
              OR FIRST(P.previous_purchase) < TIMESTAMPADD(DAY, -{{quiet_days}}, FIRST(P.event_time)))
)
