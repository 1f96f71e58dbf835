package io.patternalarm.udf;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The {@code patternalarm-event} format: the detection job's Kafka source parses, validates and
 * projects each event while reading it, so the rest of the job sees typed rows.
 *
 * <p>Options: {@code patternalarm-event.contract}, the JSON of
 * {@code patternalarm.events.contract_spec()}, and {@code patternalarm-event.columns}, the JSON of
 * {@code streaming.event_columns.columns_spec()}, both written by streaming/contract_sql.py, so the
 * contract stays defined in Python only. The table's physical columns must be
 * {@code payload STRING, reject_reason STRING, contract_time TIMESTAMP(3)} and then the columns in
 * the spec's order with their types (contract_sql.source_columns_sql writes them); the decoder
 * refuses any other layout rather than fill the wrong column.
 *
 * <p>Why a format and not a function over the {@code raw} format: the watermark can only be
 * declared on a source column, so with a raw payload the event time had to be parsed out of it a
 * second time (Flink evaluates a source's watermark expression apart from its computed column), the
 * planner copied the payload into the watermark's and the correlate's projections, and those
 * copies, the second parse and the correlate were a fifth of the source chain's samples (profiled).
 * Here the watermark reads {@code contract_time}, a column like any other.
 */
public final class EventFormatFactory implements DeserializationFormatFactory {

    public static final String IDENTIFIER = "patternalarm-event";

    public static final ConfigOption<String> CONTRACT =
            ConfigOptions.key("contract").stringType().noDefaultValue()
                    .withDescription("JSON of patternalarm.events.contract_spec()");
    public static final ConfigOption<String> COLUMNS =
            ConfigOptions.key("columns").stringType().noDefaultValue()
                    .withDescription("JSON of streaming.event_columns.columns_spec()");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        Set<ConfigOption<?>> options = new HashSet<>();
        options.add(CONTRACT);
        options.add(COLUMNS);
        return options;
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return new HashSet<>();
    }

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        FactoryUtil.validateFactoryOptions(this, formatOptions);
        String contractJson = formatOptions.get(CONTRACT);
        String columnsJson = formatOptions.get(COLUMNS);
        ObjectMapper mapper = new ObjectMapper();
        // compiled here as well, so a bad literal fails the DDL and not the running job
        FieldShape shape = new FieldShape();
        Contract contract = Contract.parse(mapper, contractJson, shape);
        List<ColumnSpec> columns = ColumnSpec.parseAll(mapper, columnsJson, contract.domains, shape);
        return new DecodingFormat<DeserializationSchema<RowData>>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context sourceContext, DataType physicalDataType) {
                checkLayout(physicalDataType, columns);
                return new EventDeserializer(contractJson, columnsJson,
                        sourceContext.createTypeInformation(physicalDataType));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    private static void checkLayout(DataType physicalDataType, List<ColumnSpec> columns) {
        RowType actual = (RowType) physicalDataType.getLogicalType();
        List<DataTypes.Field> expected = EventDeserializer.fields(columns);
        boolean same = actual.getFieldCount() == expected.size();
        for (int i = 0; same && i < expected.size(); i++) {
            LogicalType want = expected.get(i).getDataType().getLogicalType();
            same = actual.getFieldNames().get(i).equals(expected.get(i).getName())
                    && actual.getTypeAt(i).copy(true).equals(want.copy(true));
        }
        if (!same) {
            List<String> want = new ArrayList<>();
            expected.forEach(f -> want.add(f.getName() + " " + f.getDataType().getLogicalType().asSummaryString()));
            throw new ValidationException(IDENTIFIER + " fills the physical columns (" + String.join(", ", want)
                    + ") but the table declares (" + actual.asSummaryString() + "): write the DDL's columns with "
                    + "streaming/contract_sql.py source_columns_sql()");
        }
    }
}
