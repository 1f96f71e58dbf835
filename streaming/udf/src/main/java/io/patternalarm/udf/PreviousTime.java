package io.patternalarm.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code previous_time(event_time) OVER (PARTITION BY k ORDER BY proc_time ROWS BETWEEN UNBOUNDED
 * PRECEDING AND CURRENT ROW)}: the timestamp of the row before the current one of the same key, or
 * NULL for the key's first row. What {@code LAG(event_time)} says, for a ROWS frame.
 *
 * <p>Why not LAG: SQL allows LAG no explicit frame, and Flink then gives it a RANGE frame, whose
 * peers (rows of one key with the same ORDER BY value) all see the last peer's predecessor. Ordered
 * by arrival, a backlog delivers many rows of a key within one millisecond, so the first of them
 * would have been handed a later row of its own burst as its "previous" one. A ROWS frame is also
 * the cheaper operator: it emits each row at once and keeps no rows in state.
 */
@FunctionHint(output = @DataTypeHint(value = "TIMESTAMP(3)", bridgedTo = TimestampData.class))
public class PreviousTime extends AggregateFunction<TimestampData, PreviousTime.Acc> {

    private static final long serialVersionUID = 1L;

    /** The last two timestamps seen, in epoch milliseconds (null: not yet seen). */
    public static class Acc {
        public Long previous;
        public Long last;
    }

    @Override
    public Acc createAccumulator() {
        return new Acc();
    }

    public void accumulate(Acc acc, @DataTypeHint(value = "TIMESTAMP(3)", bridgedTo = TimestampData.class) TimestampData value) {
        acc.previous = acc.last;
        acc.last = value == null ? null : value.getMillisecond();
    }

    @Override
    public TimestampData getValue(Acc acc) {
        return acc.previous == null ? null : TimestampData.fromEpochMillis(acc.previous);
    }
}
