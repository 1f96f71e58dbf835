package io.patternalarm.iot;

/**
 * Which seconds of event time saw at least one reading on this subtask, over the last
 * {@link #HORIZON_S} seconds: a ring of bits (2 KB). The dropout detector asks it whether other devices
 * reported while one was silent, which tells a device's silence from a hole in the whole stream.
 */
final class FleetActivity {
    static final int HORIZON_S = 1 << 14; // 4.5 hours, beyond any usual interval x factor we expect

    private final long[] bits = new long[HORIZON_S / 64];
    private long latestSecond = Long.MIN_VALUE;

    void mark(long eventTimeMs) {
        long second = Math.floorDiv(eventTimeMs, 1000L);
        if (latestSecond == Long.MIN_VALUE || second - latestSecond >= HORIZON_S) {
            java.util.Arrays.fill(bits, 0L);
            latestSecond = second;
        } else if (second > latestSecond) {
            for (long s = latestSecond + 1; s <= second; s++) {
                clear(s);
            }
            latestSecond = second;
        } else if (second <= latestSecond - HORIZON_S) {
            return; // older than the horizon
        }
        int i = (int) Math.floorMod(second, (long) HORIZON_S);
        bits[i >>> 6] |= 1L << (i & 63);
    }

    /** Whether some reading fell in [fromMs, toMs]. */
    boolean anyBetween(long fromMs, long toMs) {
        if (latestSecond == Long.MIN_VALUE) {
            return false;
        }
        long from = Math.max(Math.floorDiv(fromMs, 1000L), latestSecond - HORIZON_S + 1);
        long to = Math.min(Math.floorDiv(toMs, 1000L), latestSecond);
        for (long s = from; s <= to; s++) {
            int i = (int) Math.floorMod(s, (long) HORIZON_S);
            if ((bits[i >>> 6] & (1L << (i & 63))) != 0) {
                return true;
            }
        }
        return false;
    }

    private void clear(long second) {
        int i = (int) Math.floorMod(second, (long) HORIZON_S);
        bits[i >>> 6] &= ~(1L << (i & 63));
    }

    long[] toArray() {
        long[] out = new long[bits.length + 1];
        out[0] = latestSecond;
        System.arraycopy(bits, 0, out, 1, bits.length);
        return out;
    }

    static FleetActivity fromArray(long[] saved) {
        FleetActivity a = new FleetActivity();
        a.latestSecond = saved[0];
        System.arraycopy(saved, 1, a.bits, 0, a.bits.length);
        return a;
    }

    /** Union with another subtask's record (after a restore, keys may have moved between subtasks). */
    void merge(FleetActivity other) {
        if (other.latestSecond == Long.MIN_VALUE) {
            return;
        }
        for (long s = other.latestSecond - HORIZON_S + 1; s <= other.latestSecond; s++) {
            if (other.anyBetween(s * 1000, s * 1000)) {
                mark(s * 1000);
            }
        }
    }
}
