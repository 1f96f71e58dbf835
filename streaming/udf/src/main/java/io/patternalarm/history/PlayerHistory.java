package io.patternalarm.history;

import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.data.utils.JoinedRowData;
import org.apache.flink.util.Collector;

import io.patternalarm.udf.DomainEvents;

import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * A gaming player's look-backs over all of their history, in arrival order, in one keyed function:
 * whether the purchase's device and IP address are new for the player, the player's running count
 * and sum of purchases, and when the player was first seen. account_takeover and chargeback_fraud
 * read these columns (streaming/player_history.py makes them the {@code gaming_history} view).
 *
 * <p>Why one function instead of Flink SQL's OVER windows: the same facts took four unbounded OVER
 * windows (per (player, device), per (player, ip), per player twice), each its own operator behind
 * its own keyed exchange, each row serialized, shipped and looked up four times, and each state
 * access paying the state TTL's incremental cleanup (docs/performance.md). Here a purchase crosses
 * one exchange and one state lookup. The semantics are the windows': every valid
 * gaming event counts (the contract makes each a purchase with an amount), "new" means the pair's
 * first use (or its first since the TTL expired it), the count and sum include the current purchase.
 *
 * <p>State per player, in one value (one state lookup per purchase; MapStates with a TTL per entry
 * measured slower than the windows they replaced): the count, the sum, the first-seen time, and the
 * devices and IP addresses used with the processing time of their last use. The value expires
 * {@code ttlDays} after its last write (0: never), like the OVER windows' keys under
 * {@code table.exec.state.ttl}; a device or IP address unused that long is dropped from it at the
 * player's next purchase, as the OVER window's (player, device) key would have expired. The lists are
 * scanned linearly: a player uses a handful of devices and addresses (thousands would make each
 * purchase slower, not wrong).
 */
public class PlayerHistory extends KeyedProcessFunction<String, RowData, RowData> {

    private static final long serialVersionUID = 1L;
    /** TIMESTAMP(3), the event-time column's declared type. */
    private static final int MILLIS = 3;

    /** The projected purchase's fields (from {@link Purchases}), then the history's. */
    public static final String[] PURCHASE_FIELDS = {"actor_id", "transaction_id", "amount", "device",
            "ip_address", "payment_method", "event_time"};
    public static final String[] HISTORY_FIELDS = {"new_device", "new_ip", "purchases", "spent", "first_seen"};
    private static final int ACTOR = 0, AMOUNT = 2, DEVICE = 3, IP = 4, TIME = 6;

    private final int ttlDays;

    private transient ValueState<Player> player;
    private transient long ttlMs;

    /** @param ttlDays PA_STATE_TTL_DAYS: an entry unused this long is forgotten; 0 keeps it forever */
    public PlayerHistory(int ttlDays) {
        this.ttlDays = ttlDays;
    }

    /** Running totals of one player. POJOs: Flink's serializer for them is cheaper than Kryo's. */
    public static class Player {
        public long purchases;
        public double spent;
        public long firstSeenMs;
        public UsedKeys devices = new UsedKeys();
        public UsedKeys ips = new UsedKeys();
    }

    /** Keys (devices or IP addresses) with the processing time of their last use. */
    public static class UsedKeys {
        public String[] keys = new String[0];
        public long[] usedMs = new long[0];

        /** Records a use of {@code key}; true if it is new: never used, or unused for {@code ttlMs}
         * (then dropped, with every other key unused that long). A NULL key is one of its own, as NULL
         * is one partition of an OVER window. */
        public boolean use(String key, long nowMs, long ttlMs) {
            int found = -1, kept = 0;
            for (int i = 0; i < keys.length; i++) {
                if (nowMs - usedMs[i] >= ttlMs) {
                    continue; // expired: dropped below
                }
                keys[kept] = keys[i];
                usedMs[kept] = usedMs[i];
                if (found < 0 && Objects.equals(keys[kept], key)) {
                    found = kept;
                }
                kept++;
            }
            if (kept < keys.length) {
                keys = Arrays.copyOf(keys, kept);
                usedMs = Arrays.copyOf(usedMs, kept);
            }
            boolean isNew = found < 0;
            if (isNew) {
                keys = Arrays.copyOf(keys, kept + 1);
                usedMs = Arrays.copyOf(usedMs, kept + 1);
                found = kept;
                keys[found] = key;
            }
            usedMs[found] = nowMs;
            return isNew;
        }
    }

    @Override
    public void open(Configuration parameters) {
        ValueStateDescriptor<Player> descriptor = new ValueStateDescriptor<>("player", Player.class);
        ttlMs = ttlDays > 0 ? Duration.ofDays(ttlDays).toMillis() : Long.MAX_VALUE;
        if (ttlDays > 0) {
            // Flink SQL's own TTL settings (StateConfigUtil): refreshed on write, expired never read.
            descriptor.enableTimeToLive(StateTtlConfig.newBuilder(Duration.ofDays(ttlDays))
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build());
        }
        player = getRuntimeContext().getState(descriptor);
    }

    @Override
    public void processElement(RowData purchase, Context ctx, Collector<RowData> out) throws Exception {
        long timeMs = purchase.getTimestamp(TIME, MILLIS).getMillisecond();
        Player p = player.value();
        if (p == null) {
            p = new Player();
            p.firstSeenMs = timeMs;
        }
        p.purchases++;
        p.spent += purchase.isNullAt(AMOUNT) ? 0.0 : purchase.getDouble(AMOUNT);
        p.firstSeenMs = Math.min(p.firstSeenMs, timeMs);
        long nowMs = ctx.timerService().currentProcessingTime();
        boolean newDevice = p.devices.use(text(purchase, DEVICE), nowMs, ttlMs);
        String ip = text(purchase, IP);
        boolean newIp = ip != null && p.ips.use(ip, nowMs, ttlMs);
        player.update(p);

        // The purchase's fields as they came, then the history's: the operators chained after this one
        // read the row before the next purchase arrives, so it need not be copied.
        out.collect(new JoinedRowData(purchase, GenericRowData.of(newDevice, newIp, p.purchases, p.spent,
                TimestampData.fromEpochMillis(p.firstSeenMs))));
    }

    private static String text(RowData row, int pos) {
        return row.isNullAt(pos) ? null : row.getString(pos).toString();
    }

    /**
     * Keeps the valid gaming events of the job's checked event stream and projects them to
     * {@link #PURCHASE_FIELDS}, so the exchange to the keyed function carries seven columns, not
     * every event column. Positions come from the job, which checks their types
     * (streaming/player_history.py). Chained to the source: the row it emits is serialized by the
     * exchange at once, so it may point into the input row.
     */
    public static class Purchases implements FlatMapFunction<RowData, RowData> {
        private static final long serialVersionUID = 1L;
        private static final StringData GAMING = StringData.fromString("gaming");

        private final int rejectReason;
        private final int domain;
        private final int[] positions;

        /** @param positions of PURCHASE_FIELDS in the checked events' row, in that order */
        public Purchases(int rejectReason, int domain, int[] positions) {
            if (positions.length != PURCHASE_FIELDS.length) {
                throw new IllegalArgumentException("Purchases needs the positions of " + PURCHASE_FIELDS.length
                        + " columns (PlayerHistory.PURCHASE_FIELDS), got " + positions.length);
            }
            this.rejectReason = rejectReason;
            this.domain = domain;
            this.positions = positions.clone();
        }

        @Override
        public void flatMap(RowData row, Collector<RowData> out) {
            if (!DomainEvents.isValidOf(row, rejectReason, domain, GAMING)) {
                return;
            }
            if (row.isNullAt(positions[ACTOR]) || row.isNullAt(positions[TIME])) {
                return; // the contract requires both; a NULL here is not a purchase
            }
            GenericRowData purchase = new GenericRowData(PURCHASE_FIELDS.length);
            for (int i = 0; i < positions.length; i++) {
                purchase.setField(i, row.isNullAt(positions[i]) ? null : value(row, positions[i], i));
            }
            out.collect(purchase);
        }

        private static Object value(RowData row, int pos, int field) {
            switch (field) {
                case AMOUNT:
                    return row.getDouble(pos);
                case TIME:
                    return row.getTimestamp(pos, MILLIS);
                default:
                    return row.getString(pos);
            }
        }
    }

    /** The player (the purchase's actor_id): the function's key. */
    public static class ByPlayer implements KeySelector<RowData, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(RowData purchase) {
            return purchase.getString(ACTOR).toString();
        }
    }
}
