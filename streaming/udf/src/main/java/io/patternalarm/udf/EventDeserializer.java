package io.patternalarm.udf;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns one Kafka record value into the source row of the {@code patternalarm-event} format:
 * {@code payload, reject_reason, contract_time}, then the typed event columns
 * ({@link EventFormatFactory} says why a format).
 *
 * <p>Each payload is read once, in one pass of the tokenizer that keeps only the fields the contract
 * and the columns name ({@link FieldShape}; no tree), validated against the contract and projected. A
 * valid event carries no payload (nothing downstream reads it, and every copy of a 300-byte string
 * cost CPU); a rejected one carries its payload and reason, for the dead-letter topic, and NULL
 * columns. A Kafka tombstone (no value) is malformed JSON, as Python's decoder says of nothing. It
 * never throws, so a bad record can never fail the job.
 */
final class EventDeserializer implements DeserializationSchema<RowData> {

    private static final long serialVersionUID = 1L;

    // The row's leading fields, at these positions (named with their types by fields()).
    static final int PAYLOAD = 0;
    static final int REJECT_REASON = 1;
    static final int CONTRACT_TIME = 2;
    static final int FIRST_COLUMN = 3;

    /** The leading fields by position, then the typed columns from {@code FIRST_COLUMN}. */
    static List<DataTypes.Field> fields(List<ColumnSpec> columns) {
        List<DataTypes.Field> fields = new ArrayList<>();
        fields.add(PAYLOAD, DataTypes.FIELD("payload", DataTypes.STRING()));
        fields.add(REJECT_REASON, DataTypes.FIELD("reject_reason", DataTypes.STRING()));
        fields.add(CONTRACT_TIME, DataTypes.FIELD("contract_time", DataTypes.TIMESTAMP(3)));
        for (ColumnSpec column : columns) {
            fields.add(DataTypes.FIELD(column.name, column.type.dataType()));
        }
        return fields;
    }

    private final String contractJson;
    private final String columnsJson;
    private final TypeInformation<RowData> producedType;

    private transient JsonFactory json;
    private transient Contract contract;
    private transient List<ColumnSpec> columns;
    private transient FieldValue event; // reused: one payload at a time

    EventDeserializer(String contractJson, String columnsJson, TypeInformation<RowData> producedType) {
        this.contractJson = contractJson;
        this.columnsJson = columnsJson;
        this.producedType = producedType;
    }

    @Override
    public void open(InitializationContext context) {
        compile();
    }

    private void compile() {
        ObjectMapper mapper = new ObjectMapper();
        FieldShape shape = new FieldShape();
        contract = Contract.parse(mapper, contractJson, shape);
        columns = ColumnSpec.parseAll(mapper, columnsJson, contract.domains, shape);
        json = mapper.getFactory();
        event = new FieldValue(shape);
    }

    @Override
    public RowData deserialize(byte[] message) {
        if (contract == null) {
            compile(); // a caller that skipped open()
        }
        GenericRowData row = new GenericRowData(FIRST_COLUMN + columns.size());
        if (message == null || !read(message)) {
            return rejected(row, message, contract.malformedJson);
        }
        Contract.Verdict verdict = contract.check(event);
        if (verdict.time != null) {
            row.setField(CONTRACT_TIME, TimestampData.fromLocalDateTime(verdict.time));
        }
        if (verdict.reason != null) {
            return rejected(row, message, verdict.reason);
        }
        for (int i = 0; i < columns.size(); i++) {
            row.setField(FIRST_COLUMN + i, columns.get(i).extract(event, verdict.domain));
        }
        return row;
    }

    private static RowData rejected(GenericRowData row, byte[] message, StringData reason) {
        row.setField(PAYLOAD, message == null ? null : StringData.fromBytes(message));
        row.setField(REJECT_REASON, reason);
        return row;
    }

    /** Reads the payload into {@code event}; false when it is not exactly one JSON value. */
    private boolean read(byte[] bytes) {
        try (JsonParser parser = json.createParser(bytes)) {
            if (parser.nextToken() == null) {
                return false; // empty or blank
            }
            // a literal JSON null is a value, not malformed: the contract calls it "not an object"
            event.read(parser);
            // trailing data after the value, as Python's json.loads refuses it
            return parser.nextToken() == null;
        } catch (IOException | RuntimeException | StackOverflowError e) {
            return false;
        }
    }

    @Override
    public boolean isEndOfStream(RowData nextElement) {
        return false;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }
}
