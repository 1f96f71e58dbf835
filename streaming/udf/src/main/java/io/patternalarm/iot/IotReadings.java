package io.patternalarm.iot;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.util.Collector;

import io.patternalarm.udf.DomainEvents;

/**
 * Keeps the valid IoT events of the job's checked event stream (the one parse of each payload) and
 * turns each into an {@link IotReading}. Column positions come from the job (Python), which reads
 * them off the table's schema and checks their types, so a reordered column list cannot silently
 * feed the wrong field.
 *
 * <p>Why RowData, Flink SQL's internal row: the stream is the SQL side's own rows handed over as
 * they are (streaming/iot_detectors.py), so neither direction of the Table/DataStream round trip
 * converts ~25 columns per event into and back out of {@code Row} objects (that conversion was a
 * fifth of the job's sampled time, profiled). The row may be reused by the operator before this one:
 * read it, never keep it.
 */
public class IotReadings implements FlatMapFunction<RowData, IotReading> {

    private static final long serialVersionUID = 1L;
    private static final StringData IOT = StringData.fromString("iot");
    /** TIMESTAMP(3), the event-time column's declared type. */
    private static final int MILLIS = 3;

    private final int rejectReason;
    private final int domain;
    private final int actorId;
    private final int transactionId;
    private final int value;
    private final int eventTime;

    /**
     * Positions in the row: rejectReason, domain, actorId and transactionId are STRING columns, value
     * a DOUBLE (the reading), eventTime a TIMESTAMP(3).
     */
    public IotReadings(int rejectReason, int domain, int actorId, int transactionId, int value, int eventTime) {
        this.rejectReason = rejectReason;
        this.domain = domain;
        this.actorId = actorId;
        this.transactionId = transactionId;
        this.value = value;
        this.eventTime = eventTime;
    }

    @Override
    public void flatMap(RowData row, Collector<IotReading> out) {
        if (!DomainEvents.isValidOf(row, rejectReason, domain, IOT)) {
            return;
        }
        if (row.isNullAt(value) || row.isNullAt(eventTime)) {
            return; // the contract requires both; a NULL here is not a reading
        }
        long ms = row.getTimestamp(eventTime, MILLIS).getMillisecond();
        out.collect(new IotReading(text(row, actorId), text(row, transactionId), row.getDouble(value), ms));
    }

    private static String text(RowData row, int pos) {
        return row.isNullAt(pos) ? null : row.getString(pos).toString();
    }

    /** The device (the event's actor_id): the detectors' partition key. */
    public static class ByDevice implements KeySelector<IotReading, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(IotReading reading) {
            return reading.deviceId;
        }
    }
}
