-- gaming account_takeover
-- A player with purchase history buys from a device_id and an ip_address it has never used before,
-- and within {{within_minutes}} minutes of that purchase makes {{min_purchases}} more purchases
-- totalling more than {{mean_multiple}} x the player's mean purchase before the takeover: someone
-- else has the account and is cashing it out. The novel purchase itself is the first matched
-- transaction; the spend that follows is compared with the history's mean, so a whale who always
-- spends big and a casual player are each held to their own level. A player without history has no
-- mean and cannot be taken over in this sense (chargeback_fraud watches new players).
-- Why a keyed function, then MATCH_RECOGNIZE: "never seen before" and "the player's mean" are facts
-- about all of the player's history, which CEP cannot see (no memory beyond its WITHIN). The
-- gaming_history view (streaming/player_history.py, PlayerHistory.java) hands each purchase whether
-- its device and its IP address are the player's first use of them and the player's running count
-- and sum of purchases including this one (the mean before a purchase is (spent - amount) /
-- (purchases - 1)), in arrival order (docs/patterns.md, "History in arrival order"). It replaced
-- three nested unbounded OVER windows (per (player, device), per (player, ip), per player), one
-- operator and one keyed exchange each.
-- "New device, then a spend" is a sequence, which CEP states directly: N, then any purchases P, up to
-- the first L at which there are {{min_purchases}} purchases after N totalling over the bound
-- (reluctant P*?, so the alert fires as soon as the bound is crossed).
-- State: the history keeps a count and a sum per player and an entry per (player, device) and
-- (player, ip): the entries grow with every new pair, not only with the population, since "never
-- seen before" means remembering every pair ever seen. Only the state TTL (PA_STATE_TTL_DAYS) bounds
-- that, and a pair unused longer than the TTL reads as new again (a false positive only if the
-- spend condition holds too).
-- CEP keeps a partial match per novel purchase for at most {{within_minutes}} minutes.
-- Severity CRITICAL: a real customer's account and stored payment methods are in someone else's
-- hands and being spent right now.
-- Partition key: actor_id (the player).
-- @threshold min_purchases = 3
-- @threshold mean_multiple = 3.0
-- @threshold within_minutes = 30
SELECT
  CONCAT('account_takeover-', first_transaction_id) AS alert_id,
  'account_takeover' AS `pattern`,
  'gaming' AS domain,
  actor_id,
  'CRITICAL' AS severity,
  first_event_time,
  last_event_time AS event_time,
  CONCAT('[', JSON_STRING(first_transaction_id), ',',
         CASE WHEN spend_ids IS NULL THEN '' ELSE CONCAT(spend_ids, ',') END,
         JSON_STRING(last_transaction_id), ']') AS transaction_ids,
  JSON_OBJECT(KEY 'new_device' VALUE new_device, KEY 'new_ip' VALUE new_ip,
              KEY 'prior_purchases' VALUE prior_purchases, KEY 'prior_mean' VALUE ROUND(prior_mean, 2),
              KEY 'purchases_after' VALUE purchases_after, KEY 'spent_after' VALUE ROUND(spent_after, 2),
              KEY 'multiple_of_mean' VALUE ROUND(spent_after / prior_mean, 2)) AS `measures`
FROM (
  SELECT actor_id, transaction_id, amount, device, ip_address, event_time, new_device, new_ip,
    purchases, spent
  FROM gaming_history
)
MATCH_RECOGNIZE (
  PARTITION BY actor_id
  ORDER BY event_time
  MEASURES
    N.transaction_id AS first_transaction_id,
    L.transaction_id AS last_transaction_id,
    LISTAGG(JSON_STRING(P.transaction_id), ',') AS spend_ids,
    N.event_time AS first_event_time,
    L.event_time AS last_event_time,
    N.device AS new_device,
    N.ip_address AS new_ip,
    N.purchases - 1 AS prior_purchases,
    (N.spent - N.amount) / (N.purchases - 1) AS prior_mean,
    COUNT(P.transaction_id) + 1 AS purchases_after,
    COALESCE(SUM(P.amount), 0) + L.amount AS spent_after
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN (N P*? L) WITHIN INTERVAL '{{within_minutes}}' MINUTE(4)
  DEFINE
    N AS N.new_device AND N.new_ip AND N.purchases > 1,
    P AS P.amount IS NOT NULL,
    L AS COUNT(P.transaction_id) + 1 >= {{min_purchases}}
         AND COALESCE(SUM(P.amount), 0) + L.amount > {{mean_multiple}} * (N.spent - N.amount) / (N.purchases - 1)
)
