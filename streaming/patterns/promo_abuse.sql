-- ecommerce promo_abuse
-- Orders from {{min_users}} distinct user_ids ship to the same address within {{within_hours}} h of
-- event time: one person farming new-customer promotions (first-order discounts, referral credit)
-- through throwaway accounts. The address is the key, not the actor: street and zip with case folded
-- and runs of whitespace collapsed ("12  MAPLE Ct " = "12 maple ct"); the alert's actor_id holds
-- that key ("<street>|<zip>"). Distinct users imply as many orders, so "at least 4 orders from at
-- least 4 users" is the one threshold min_users. A household of up to {{min_users}} - 1 people never
-- fires.
-- Why an OVER window, then MATCH_RECOGNIZE: "distinct users" needs per-user memory that a pattern
-- cannot express, so an OVER window per (address, user) hands each order the time of that user's
-- previous order to the address (previous_time, LAG for a ROWS frame; in arrival order:
-- docs/patterns.md, "History in arrival order") and only a user's first order there in any {{within_hours}} h
-- goes on (a user's repeat orders there drop out); within any {{within_hours}} h the remaining orders
-- then come from distinct users. The run of those orders per address is a sequence, which CEP states
-- directly with the orders themselves as evidence, and it fires once, when the last user arrives (a
-- window TVF would wait for the window's end, up to a day).
-- (A user whose repeat order falls inside the window while their first fell out is not counted
-- again: the rule can only be late on such mixed bursts, never early.)
-- State: the OVER window keeps two timestamps per (address, user), cleared by the state TTL
-- (PA_STATE_TTL_DAYS). The RANGE window over {{within_hours}} h it replaces kept every order of the
-- last day on the heap. CEP buffers first orders per address and WITHIN drops a partial match after
-- {{within_hours}} h.
-- Severity MEDIUM: the loss per order is a discount, not the goods; it adds up, but it is policy
-- abuse rather than theft from a customer.
-- Partition key: the normalized shipping address (street|zip).
-- @threshold min_users = 4
-- @threshold within_hours = 24
SELECT
  CONCAT('promo_abuse-', first_transaction_id) AS alert_id,
  'promo_abuse' AS `pattern`,
  'ecommerce' AS domain,
  address_key AS actor_id,
  'MEDIUM' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', transaction_ids, ']') AS transaction_ids,
  JSON_OBJECT(KEY 'orders' VALUE orders, KEY 'distinct_users' VALUE orders,
              KEY 'total_amount' VALUE total_amount,
              KEY 'span_minutes' VALUE CAST(TIMESTAMPDIFF(SECOND, first_event_time, last_event_time) AS DOUBLE) / 60)
    AS `measures`
FROM (
  SELECT * FROM (
    SELECT address_key, user_id, transaction_id, amount, event_time,
      previous_time(event_time) OVER (PARTITION BY address_key, user_id ORDER BY proc_time
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS previous_order
    FROM (
      SELECT user_id, transaction_id, amount, event_time, proc_time,
        CONCAT(LOWER(TRIM(REGEXP_REPLACE(shipping_street, '\s+', ' '))), '|',
               LOWER(TRIM(REGEXP_REPLACE(shipping_zip, '\s+', ' ')))) AS address_key
      FROM events_ecommerce
      WHERE user_id IS NOT NULL
        AND shipping_street IS NOT NULL AND shipping_zip IS NOT NULL
    )
  )
  WHERE previous_order IS NULL OR previous_order < TIMESTAMPADD(HOUR, -{{within_hours}}, event_time)
)
MATCH_RECOGNIZE (
  PARTITION BY address_key
  ORDER BY event_time
  MEASURES
    FIRST(U.transaction_id) AS first_transaction_id,
    LISTAGG(JSON_STRING(U.transaction_id), ',') AS transaction_ids,
    FIRST(U.event_time) AS first_event_time,
    LAST(U.event_time) AS last_event_time,
    COUNT(U.transaction_id) AS orders,
    ROUND(SUM(U.amount), 2) AS total_amount
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (U{{{min_users}}}) WITHIN INTERVAL '{{within_hours}}' HOUR(4)
  -- every row qualifies (the WHERE above kept only first orders); DEFINE needs a condition
  DEFINE
    U AS U.user_id IS NOT NULL
)
