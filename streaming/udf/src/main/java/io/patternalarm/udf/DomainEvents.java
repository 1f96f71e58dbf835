package io.patternalarm.udf;

import org.apache.flink.api.common.functions.FilterFunction;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * Keeps the valid events of one domain from the job's checked event stream, before it fans out to
 * the SQL statements of that domain (streaming/event_stream.py, {@code domain_table}).
 *
 * <p>Why in the stream and not in each statement's WHERE: every SQL statement reading the shared
 * events view gets its own Calc over every event, and the planner's Calc copies each string column
 * its expressions read before the filter runs (a third of the job's allocation was those copies,
 * docs/performance.md). A statement that reads one domain's table sees only that domain's rows; this
 * filter compares one string in place and passes the row on as it is (object reuse is on: the row
 * is not copied, and is not kept here).
 */
public class DomainEvents implements FilterFunction<RowData> {

    private static final long serialVersionUID = 1L;

    private final int rejectReason;
    private final int domainPosition;
    private final String domain;
    private transient StringData wanted;

    /** Positions of the STRING columns reject_reason and domain in the row; the domain to keep. */
    public DomainEvents(int rejectReason, int domainPosition, String domain) {
        this.rejectReason = rejectReason;
        this.domainPosition = domainPosition;
        this.domain = domain;
    }

    @Override
    public boolean filter(RowData row) {
        if (wanted == null) {
            wanted = StringData.fromString(domain);
        }
        return isValidOf(row, rejectReason, domainPosition, wanted);
    }

    /**
     * Whether the row is a valid event (no reject reason) of the domain {@code wanted}: the one test
     * of every JVM branch that reads one domain (this filter, the IoT readings, the gaming purchases).
     */
    public static boolean isValidOf(RowData row, int rejectReason, int domainPosition, StringData wanted) {
        return row.isNullAt(rejectReason) && !row.isNullAt(domainPosition)
                && wanted.equals(row.getString(domainPosition));
    }
}
