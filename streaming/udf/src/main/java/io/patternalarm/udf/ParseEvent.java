package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.CallContext;
import org.apache.flink.table.types.inference.TypeInference;

import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * {@code parse_event(payload, contract, columns)}: parses one raw event payload once, validates it
 * against the event contract and projects it onto typed columns.
 *
 * <p>{@code contract} is the JSON of {@code patternalarm.events.contract_spec()} and {@code columns}
 * the JSON of {@code streaming.event_columns.columns_spec()}, both SQL literals written by the job,
 * so the contract stays defined in Python only. The output row is {@code reject_reason STRING}
 * (NULL for a valid event) followed by the columns with their declared types; the column list is read
 * from the literal at planning time by {@link #getTypeInference}. For a rejected event the columns are
 * NULL. Exactly one row per call, so {@code LATERAL TABLE} keeps every event (rejects included).
 *
 * <p>Why a table function: a correlate runs once per row, while a scalar call would be copied into
 * every consumer's projection by the planner and parse the payload once per consumer.
 */
public class ParseEvent extends TableFunction<RowData> {

    private static final long serialVersionUID = 1L;

    private transient ObjectMapper mapper;
    private transient StringData compiledContract;
    private transient StringData compiledColumns;
    private transient Contract contract;
    private transient List<ColumnSpec> columns;

    public void eval(StringData payload, StringData contractJson, StringData columnsJson) {
        compile(contractJson, columnsJson);
        GenericRowData row = new GenericRowData(1 + columns.size());
        JsonNode event = payload == null ? null : parse(payload.toBytes());
        if (event == null) {
            row.setField(0, contract.malformedJson);
            collect(row);
            return;
        }
        Contract.Verdict verdict = contract.check(event);
        if (verdict.reason != null) {
            row.setField(0, verdict.reason);
            collect(row);
            return;
        }
        ObjectNode object = (ObjectNode) event;
        for (int i = 0; i < columns.size(); i++) {
            row.setField(i + 1, columns.get(i).extract(object, verdict.domain));
        }
        collect(row);
    }

    /** The parsed JSON value, or null when the payload is not exactly one JSON value. */
    private JsonNode parse(byte[] bytes) {
        try (JsonParser parser = mapper.getFactory().createParser(bytes)) {
            if (parser.nextToken() == null) {
                return null; // empty or blank
            }
            JsonNode node = mapper.readTree(parser);
            if (parser.nextToken() != null) {
                return null; // trailing data after the value, as Python's json.loads refuses it
            }
            // a literal JSON null is a value, not malformed: the contract calls it "not an object"
            return node == null ? mapper.nullNode() : node;
        } catch (IOException | RuntimeException | StackOverflowError e) {
            return null;
        }
    }

    /** Parse the literals once per function instance; they are the same objects on every call. */
    private void compile(StringData contractJson, StringData columnsJson) {
        if (contractJson == compiledContract && columnsJson == compiledColumns && contract != null) {
            return;
        }
        if (mapper == null) {
            mapper = new ObjectMapper();
        }
        if (contract == null || !contractJson.equals(compiledContract) || !columnsJson.equals(compiledColumns)) {
            contract = Contract.parse(mapper, contractJson.toString());
            columns = ColumnSpec.parseAll(mapper, columnsJson.toString(), contract.domains);
        }
        compiledContract = contractJson;
        compiledColumns = columnsJson;
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        DataType string = DataTypes.STRING().bridgedTo(StringData.class);
        return TypeInference.newBuilder()
                .typedArguments(string, string, string)
                .outputTypeStrategy(ParseEvent::outputType)
                .build();
    }

    private static Optional<DataType> outputType(CallContext call) {
        if (!call.isArgumentLiteral(2) || !call.isArgumentLiteral(1)) {
            throw call.newValidationError(
                    "parse_event(payload, contract, columns): contract and columns must be string literals "
                            + "(streaming/contract_sql.py writes them)");
        }
        String json = call.getArgumentValue(2, String.class)
                .orElseThrow(() -> call.newValidationError("parse_event: the columns literal is NULL"));
        List<ColumnSpec> specs;
        try {
            specs = ColumnSpec.parseAll(new ObjectMapper(), json, null);
        } catch (IllegalArgumentException e) {
            throw call.newValidationError("parse_event: bad columns literal: %s", e.getMessage());
        }
        DataTypes.Field[] fields = new DataTypes.Field[specs.size() + 1];
        fields[0] = DataTypes.FIELD("reject_reason", DataTypes.STRING());
        for (int i = 0; i < specs.size(); i++) {
            fields[i + 1] = DataTypes.FIELD(specs.get(i).name, specs.get(i).type.dataType());
        }
        return Optional.of(DataTypes.ROW(fields).bridgedTo(RowData.class));
    }
}
