-- history_coverage_min (issue #5, patternalarm/history_features.py): minutes since the earliest
-- window the history store holds. The window scorer's history query reads min(window_start) of
-- actor_windows once per batch; the primary key (actor_id, window_start) cannot answer that
-- without a scan of the whole table (001's window_end index would do only if every window lasted
-- exactly one minute), this index answers it with one descent. An index rather than
-- a one-row table kept by a trigger: it stays right when windows are deleted or the table is
-- truncated (retention, test resets) with no trigger logic, at the cost of one more index entry
-- per stored window (streaming/bench_history_lookup.py times the scorer's upsert).
CREATE INDEX actor_windows_start_idx ON actor_windows (window_start);
