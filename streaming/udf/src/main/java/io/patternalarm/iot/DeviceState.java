package io.patternalarm.iot;

/**
 * Everything the four detectors remember about one device (one keyed value, a Flink POJO).
 * About 1 KB per device: the ring of the last readings dominates.
 */
public class DeviceState {
    /** The last {@code window} readings that differ from the one before (a stuck value enters once). */
    public double[] ring;
    public int ringSize;
    public int ringNext;

    public boolean hasLast;
    public double lastValue;
    public long lastTimeMs;
    public String lastTxn;

    /** Flatline: the current run of identical readings. */
    public int runLength;
    public long runStartMs;
    public String runFirstTxn;
    public boolean runFromVaryingDevice;
    public boolean runAlerted;

    /** Dropout: the usual interval (moving average of gaps) and the pending timers. */
    public double intervalMs;
    public int gaps;
    public long dueMs;
    public long cleanupMs;
    /** A deadline that passed before the next reading came, waiting for the watermark to report it. */
    public long overdueMs;
    public long overdueLastMs;
    public String overdueTxn;
    public double overdueIntervalMs;
    public long overdueSilentMs;

    /** Drift: the reference level, the state of a shift and when it began. */
    public int driftPhase;
    public boolean hasReference;
    public double referenceMedian;
    public double referenceSd;
    public int shiftSign;
    public long shiftStartMs;
    public String shiftFirstTxn;
    public double shiftFirstLevel;

    public DeviceState() {}
}
