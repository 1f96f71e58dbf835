-- Windows stored before the amount_std fix (commit f67932c) may hold the string "NaN" there: Flink's
-- STDDEV_POP cancelled to NaN for identical amounts (a flatlined sensor's window) and JSON_OBJECT
-- wrote it as a string. The true value for identical amounts is 0, which is what the feature
-- definition (SQRT(GREATEST(VAR_POP(amount), 0))) gives now. Left alone, such rows stop every
-- retrain at the Great Expectations not-null check on amount_std.

UPDATE actor_windows
   SET features = jsonb_set(features, '{amount_std}', '0'::jsonb)
 WHERE jsonb_typeof(features -> 'amount_std') = 'string';
