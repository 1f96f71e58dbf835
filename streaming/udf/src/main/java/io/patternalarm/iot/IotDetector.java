package io.patternalarm.iot;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;

/**
 * The four IoT detectors (spike, flatline, drift, dropout) for one device, in one keyed function so a
 * reading is looked at once and the device's history is kept once.
 *
 * <ul>
 *   <li><b>spike</b>: the reading is more than {@code spike.robust_sds} robust standard deviations
 *       (1.4826 x MAD) from the median of the device's last {@code window} readings. A device back from a
 *       silence of more than {@code spike.restart_after_intervals} usual intervals (by default the span
 *       the window covers) starts its window, and with it the drift reference, afresh: a level read hours
 *       ago (a seasonal sensor, a job resumed from an old checkpoint) says nothing about this reading.</li>
 *   <li><b>flatline</b>: {@code flatline.min_readings} consecutive identical readings from a device whose
 *       readings varied before the run began (robust sd &gt; 0).</li>
 *   <li><b>drift</b>: the recent level (median of the last {@code drift.recent_readings} readings) sits
 *       {@code drift.min_sds} reference sds or more from the reference level, on one side, for
 *       {@code drift.min_minutes} of event time. The reference is the window's median and robust sd at the
 *       last calm reading (recent level within {@code drift.calm_sds} of it), so a slow ramp cannot drag
 *       it along.</li>
 *   <li><b>dropout</b>: no reading for more than {@code dropout.interval_factor} x the device's usual
 *       interval (moving average of its gaps): an event-time timer. It alerts only if other devices of the
 *       same subtask reported during the last usual interval before the deadline: a watermark that jumps
 *       over a hole in the whole stream (the generator stopped, a far-later replay) is not every device
 *       falling silent at once.</li>
 * </ul>
 *
 * <p>Alerts are rows of the job's alert schema (without emitted_at) with deterministic ids
 * ({@code <pattern>-<transaction id>}), so a restart from a checkpoint rewrites the same rows.
 * Readings equal to the previous one do not enter the window: a stuck stretch is the flatline
 * detector's business and would otherwise shrink the MAD so the first honest readings after it look
 * like spikes.
 */
public class IotDetector extends KeyedProcessFunction<String, IotReading, Row> implements CheckpointedFunction {

    private static final long serialVersionUID = 1L;
    private static final double MAD_TO_SD = 1.4826;
    private static final long RETENTION_MS = 24L * 3600 * 1000; // a silent device's state is dropped after a day
    private static final int NORMAL = 0, SUSPECT = 1, DRIFTED = 2;

    public static final String[] ALERT_FIELDS = {"alert_id", "pattern", "domain", "actor_id", "severity",
            "first_event_time", "event_time", "transaction_ids", "measures"};

    private final String thresholdsJson;

    private transient int window, minReadings, flatlineReadings, recentReadings, gapsForInterval;
    private transient double spikeSds, driftSds, calmSds, intervalFactor, restartIntervals;
    private transient long driftHoldMs;
    private transient String spikeSeverity, flatlineSeverity, driftSeverity, dropoutSeverity;
    private transient ObjectMapper mapper;
    private transient ValueState<DeviceState> device;
    private transient FleetActivity activity;
    private transient ListState<long[]> activityState;
    private transient double[] scratch;

    /** @param thresholdsJson {"spike": {"robust_sds": 6, ...}, ...} written by streaming/iot_detectors.py */
    public IotDetector(String thresholdsJson) {
        this.thresholdsJson = thresholdsJson;
    }

    /** The alert rows' type: the job's alert schema minus emitted_at, which the SQL union stamps. */
    public static TypeInformation<Row> alertType() {
        return Types.ROW_NAMED(ALERT_FIELDS, Types.STRING, Types.STRING, Types.STRING, Types.STRING, Types.STRING,
                Types.LOCAL_DATE_TIME, Types.LOCAL_DATE_TIME, Types.STRING, Types.STRING);
    }

    @Override
    public void open(Configuration parameters) throws Exception {
        mapper = new ObjectMapper();
        JsonNode t = mapper.readTree(thresholdsJson);
        window = t.at("/spike/window").asInt(100);
        minReadings = t.at("/spike/min_readings").asInt(30);
        spikeSds = t.at("/spike/robust_sds").asDouble(6.0);
        restartIntervals = t.at("/spike/restart_after_intervals").asDouble(100.0);
        flatlineReadings = t.at("/flatline/min_readings").asInt(30);
        driftSds = t.at("/drift/min_sds").asDouble(3.0);
        calmSds = t.at("/drift/calm_sds").asDouble(1.0);
        driftHoldMs = Math.round(t.at("/drift/min_minutes").asDouble(10.0) * 60_000);
        recentReadings = t.at("/drift/recent_readings").asInt(10);
        intervalFactor = t.at("/dropout/interval_factor").asDouble(5.0);
        gapsForInterval = t.at("/dropout/min_readings").asInt(20);
        spikeSeverity = t.at("/spike/severity").asText("MEDIUM");
        flatlineSeverity = t.at("/flatline/severity").asText("HIGH");
        driftSeverity = t.at("/drift/severity").asText("MEDIUM");
        dropoutSeverity = t.at("/dropout/severity").asText("HIGH");
        if (restartIntervals < 0) {
            throw new IllegalArgumentException("IoT thresholds: PA_RULE_SPIKE_RESTART_AFTER_INTERVALS must be >= 0 (0: never "
                    + "restart); got " + restartIntervals);
        }
        if (minReadings > window || recentReadings > minReadings) {
            throw new IllegalArgumentException("IoT thresholds: need drift.recent_readings <= spike.min_readings <= "
                    + "spike.window; got " + recentReadings + ", " + minReadings + ", " + window);
        }
        device = getRuntimeContext().getState(new ValueStateDescriptor<>("device", DeviceState.class));
        scratch = new double[window];
    }

    @Override
    public void processElement(IotReading r, Context ctx, Collector<Row> out) throws Exception {
        DeviceState s = device.value();
        if (s == null) {
            s = new DeviceState();
            s.ring = new double[window];
        }
        activity.mark(r.eventTimeMs);
        boolean inOrder = !s.hasLast || r.eventTimeMs >= s.lastTimeMs;
        if (inOrder && backFromLongSilence(s, r)) {
            restartBaseline(s);
        }
        if (inOrder) {
            scheduleDropout(s, r, ctx);
        }
        boolean repeat = s.hasLast && r.value == s.lastValue;
        double median = Double.NaN, sd = Double.NaN;
        if (s.ringSize >= minReadings) {
            median = median(s, s.ringSize);
            sd = MAD_TO_SD * mad(s, median);
        }
        flatline(s, r, repeat, sd, out);
        if (sd > 0 && Math.abs(r.value - median) > spikeSds * sd) {
            out.collect(alert("spike", spikeSeverity, r.deviceId, r.transactionId, r.eventTimeMs, r.eventTimeMs,
                    new String[] {r.transactionId}, measures("value", r.value, "median", median, "robust_sd", sd,
                            "deviation_sds", Math.abs(r.value - median) / sd)));
        }
        if (!repeat) {
            s.ring[s.ringNext] = r.value;
            s.ringNext = (s.ringNext + 1) % window;
            s.ringSize = Math.min(s.ringSize + 1, window);
        }
        if (sd > 0) {
            drift(s, r, median, sd, out);
        }
        if (inOrder) {
            s.hasLast = true;
            s.lastValue = r.value;
            s.lastTimeMs = r.eventTimeMs;
            s.lastTxn = r.transactionId;
        }
        device.update(s);
    }

    /**
     * Whether the device was silent for longer than restart_after_intervals usual intervals (0: never):
     * its window then describes another time (a seasonal level moved, a device swapped or recalibrated),
     * and judging the reading against it raises spikes and drifts that are only the passing hours.
     */
    private boolean backFromLongSilence(DeviceState s, IotReading r) {
        return s.hasLast && restartIntervals > 0 && s.intervalMs > 0
                && r.eventTimeMs - s.lastTimeMs > restartIntervals * s.intervalMs;
    }

    /**
     * Forget the readings and the drift reference, keep the usual interval (dropout) and the flatline run.
     * Spike and drift are blind until min_readings new readings have come (the price of not alerting on
     * a stale level); the silence itself is the dropout detector's to report.
     */
    private static void restartBaseline(DeviceState s) {
        s.ringSize = 0;
        s.ringNext = 0;
        s.driftPhase = NORMAL;
        s.hasReference = false;
        s.shiftStartMs = 0;
    }

    /** The usual interval from the gaps (dropouts excluded), and the deadline timer after this reading. */
    private void scheduleDropout(DeviceState s, IotReading r, Context ctx) {
        if (s.hasLast) {
            double gap = r.eventTimeMs - s.lastTimeMs;
            if (s.gaps == 0) {
                s.intervalMs = gap;
                s.gaps = 1;
            } else if (gap <= intervalFactor * s.intervalMs) {
                s.intervalMs += (gap - s.intervalMs) / Math.min(s.gaps + 1, 20);
                s.gaps++;
            }
        }
        if (s.dueMs != 0) {
            if (r.eventTimeMs > s.dueMs) {
                // The deadline passed in event time before this reading came: a dropout whose timer the
                // watermark has not reached yet (a backlog is read faster than the watermark moves). The
                // timer stays and reports it; this reading does not cancel what already happened.
                s.overdueMs = s.dueMs;
                s.overdueLastMs = s.lastTimeMs;
                s.overdueTxn = s.lastTxn;
                s.overdueIntervalMs = s.intervalMs;
                s.overdueSilentMs = r.eventTimeMs - s.lastTimeMs;
            } else {
                ctx.timerService().deleteEventTimeTimer(s.dueMs);
            }
            s.dueMs = 0;
        }
        if (s.cleanupMs != 0) {
            ctx.timerService().deleteEventTimeTimer(s.cleanupMs);
            s.cleanupMs = 0;
        }
        if (s.gaps >= gapsForInterval && s.intervalMs > 0) {
            s.dueMs = r.eventTimeMs + (long) Math.ceil(intervalFactor * s.intervalMs) + 1;
            ctx.timerService().registerEventTimeTimer(s.dueMs);
        } else {
            s.cleanupMs = r.eventTimeMs + RETENTION_MS;
            ctx.timerService().registerEventTimeTimer(s.cleanupMs);
        }
    }

    private void flatline(DeviceState s, IotReading r, boolean repeat, double sd, Collector<Row> out) {
        if (!repeat) {
            s.runLength = 1;
            s.runStartMs = r.eventTimeMs;
            s.runFirstTxn = r.transactionId;
            s.runFromVaryingDevice = sd > 0;
            s.runAlerted = false;
            return;
        }
        s.runLength++;
        if (s.runLength >= flatlineReadings && s.runFromVaryingDevice && !s.runAlerted) {
            s.runAlerted = true;
            out.collect(alert("flatline", flatlineSeverity, r.deviceId, s.runFirstTxn, s.runStartMs, r.eventTimeMs,
                    new String[] {s.runFirstTxn, r.transactionId},
                    measures("readings", s.runLength, "value", r.value, "robust_sd_before", sd)));
        }
    }

    /** Reference from the last calm reading; a shift must hold, on one side, for the whole hold time. */
    private void drift(DeviceState s, IotReading r, double median, double sd, Collector<Row> out) {
        double recent = recentLevel(s);
        if (s.driftPhase == NORMAL || s.driftPhase == DRIFTED) {
            if (Math.abs(recent - median) < calmSds * sd) {
                s.driftPhase = NORMAL;  // calm again (after a drift: the window has learned the new level)
                s.hasReference = true;
                s.referenceMedian = median;
                s.referenceSd = sd;
            } else if (s.driftPhase == NORMAL && s.hasReference) {
                s.driftPhase = SUSPECT;
                s.shiftStartMs = 0;
            }
            if (s.driftPhase != SUSPECT) {
                return;
            }
        }
        double sds = (recent - s.referenceMedian) / s.referenceSd;
        if (Math.abs(sds) < calmSds) {
            s.driftPhase = NORMAL;
            s.shiftStartMs = 0;
        } else if (Math.abs(sds) >= driftSds) {
            int sign = sds > 0 ? 1 : -1;
            if (s.shiftStartMs == 0 || sign != s.shiftSign) {
                s.shiftStartMs = r.eventTimeMs;
                s.shiftFirstTxn = r.transactionId;
                s.shiftSign = sign;
                s.shiftFirstLevel = recent;
            } else if (r.eventTimeMs - s.shiftStartMs >= driftHoldMs) {
                s.driftPhase = DRIFTED;
                out.collect(alert("drift", driftSeverity, r.deviceId, s.shiftFirstTxn, s.shiftStartMs, r.eventTimeMs,
                        new String[] {s.shiftFirstTxn, r.transactionId},
                        measures("reference_level", s.referenceMedian, "reference_sd", s.referenceSd,
                                "level", recent, "shift_sds", sds,
                                "shifted_minutes", (r.eventTimeMs - s.shiftStartMs) / 60_000.0)));
                s.shiftStartMs = 0;
            }
        } else {
            s.shiftStartMs = 0;  // between calm and shifted: the shift did not stay, its clock restarts
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) throws Exception {
        DeviceState s = device.value();
        if (s == null) {
            return;
        }
        if (timestamp == s.cleanupMs) {
            device.clear();
            return;
        }
        if (timestamp == s.overdueMs) {
            dropout(ctx.getCurrentKey(), s.overdueTxn, s.overdueLastMs, timestamp, s.overdueIntervalMs,
                    s.overdueSilentMs, out);
            s.overdueMs = 0;
            device.update(s);
            return;
        }
        if (timestamp != s.dueMs) {
            return;
        }
        s.dueMs = 0;
        dropout(ctx.getCurrentKey(), s.lastTxn, s.lastTimeMs, timestamp, s.intervalMs, timestamp - s.lastTimeMs, out);
        s.cleanupMs = timestamp + RETENTION_MS;
        ctx.timerService().registerEventTimeTimer(s.cleanupMs);
        device.update(s);
    }

    /** The alert, if other devices of this subtask reported in the last usual interval before the deadline. */
    private void dropout(String deviceId, String lastTxn, long lastMs, long dueMs, double intervalMs, long silentMs,
                         Collector<Row> out) {
        if (activity.anyBetween(dueMs - (long) Math.ceil(intervalMs), dueMs)) {
            out.collect(alert("dropout", dropoutSeverity, deviceId, lastTxn, lastMs, dueMs, new String[] {lastTxn},
                    measures("usual_interval_s", intervalMs / 1000.0, "silent_s", silentMs / 1000.0,
                            "interval_factor", intervalFactor)));
        }
    }

    private double median(DeviceState s, int n) {
        // the last n values in ring order (n <= ringSize)
        for (int i = 0; i < n; i++) {
            scratch[i] = s.ring[Math.floorMod(s.ringNext - 1 - i, window)];
        }
        Arrays.sort(scratch, 0, n);
        return n % 2 == 1 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
    }

    private double mad(DeviceState s, double median) {
        int n = s.ringSize;
        for (int i = 0; i < n; i++) {
            scratch[i] = Math.abs(s.ring[i] - median);
        }
        Arrays.sort(scratch, 0, n);
        return n % 2 == 1 ? scratch[n / 2] : (scratch[n / 2 - 1] + scratch[n / 2]) / 2;
    }

    private double recentLevel(DeviceState s) {
        return median(s, Math.min(recentReadings, s.ringSize));
    }

    private String measures(Object... keyValues) {
        ObjectNode node = mapper.createObjectNode();
        for (int i = 0; i < keyValues.length; i += 2) {
            Object v = keyValues[i + 1];
            if (v instanceof Integer) {
                node.put((String) keyValues[i], (Integer) v);
            } else {
                node.put((String) keyValues[i], Math.round((Double) v * 1000.0) / 1000.0);
            }
        }
        return node.toString();
    }

    private Row alert(String pattern, String severity, String deviceId, String idTxn, long firstMs, long lastMs,
                      String[] txns, String measures) {
        return Row.of(pattern + "-" + idTxn, pattern, "iot", deviceId, severity, utc(firstMs), utc(lastMs),
                mapper.valueToTree(txns).toString(), measures);
    }

    private static LocalDateTime utc(long ms) {
        return LocalDateTime.ofInstant(Instant.ofEpochMilli(ms), ZoneOffset.UTC);
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        activityState.update(java.util.List.of(activity.toArray()));
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        activityState = context.getOperatorStateStore().getUnionListState(
                new ListStateDescriptor<>("fleet-activity", PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO));
        activity = new FleetActivity();
        if (context.isRestored()) {
            for (long[] saved : activityState.get()) {
                activity.merge(FleetActivity.fromArray(saved));
            }
        }
    }
}
