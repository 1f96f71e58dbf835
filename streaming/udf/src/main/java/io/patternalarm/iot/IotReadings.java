package io.patternalarm.iot;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * Keeps the valid IoT events of the job's checked event stream (the one parse of each payload) and
 * turns each into an {@link IotReading}. Column positions come from the job (Python), which reads
 * them off the table's schema, so a reordered column list cannot silently feed the wrong field.
 */
public class IotReadings implements FlatMapFunction<Row, IotReading> {

    private static final long serialVersionUID = 1L;

    private final int rejectReason;
    private final int domain;
    private final int actorId;
    private final int transactionId;
    private final int value;
    private final int eventTime;

    public IotReadings(int rejectReason, int domain, int actorId, int transactionId, int value, int eventTime) {
        this.rejectReason = rejectReason;
        this.domain = domain;
        this.actorId = actorId;
        this.transactionId = transactionId;
        this.value = value;
        this.eventTime = eventTime;
    }

    @Override
    public void flatMap(Row row, Collector<IotReading> out) {
        if (row.getField(rejectReason) != null || !"iot".equals(row.getField(domain))) {
            return;
        }
        Object reading = row.getField(value);
        Object time = row.getField(eventTime);
        if (!(reading instanceof Double) || !(time instanceof LocalDateTime)) {
            return; // the contract requires both; a NULL here is not a reading
        }
        long ms = ((LocalDateTime) time).toInstant(ZoneOffset.UTC).toEpochMilli();
        out.collect(new IotReading((String) row.getField(actorId), (String) row.getField(transactionId),
                (Double) reading, ms));
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
