package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.inference.TypeStrategies;

import java.io.IOException;
import java.time.LocalDateTime;

/**
 * {@code event_time_of(payload, timestamp_rule)}: the contract timestamp of a raw payload as
 * TIMESTAMP(3), or NULL when the payload is not a JSON object whose top-level timestamp field (the
 * last one, as Python's decoder keeps) is a string the rule accepts.
 *
 * <p>It feeds the source's event-time column and watermark, which Flink evaluates twice per event
 * (in the source for the watermark, and in the projection), so it only tokenizes: one pass over the
 * top level, nested values skipped, no tree built. {@code timestamp_rule} is the JSON of the
 * "timestamp" entry of {@code events.contract_spec()}. For an event parse_event accepts this is its
 * timestamp; for a rejected one the job falls back to the Kafka timestamp.
 */
public class EventTime extends ScalarFunction {

    private static final long serialVersionUID = 1L;

    private transient JsonFactory factory;
    private transient StringData compiledFor;
    private transient TimestampRule rule;

    public TimestampData eval(StringData payload, StringData ruleJson) {
        if (ruleJson != compiledFor && (compiledFor == null || !ruleJson.equals(compiledFor))) {
            ObjectMapper mapper = new ObjectMapper();
            try {
                rule = new TimestampRule(mapper.readTree(ruleJson.toString()));
            } catch (IOException e) {
                throw new IllegalArgumentException("event_time_of: timestamp rule is not JSON", e);
            }
            factory = mapper.getFactory();
            compiledFor = ruleJson;
        }
        if (payload == null) {
            return null;
        }
        String text = topLevelString(payload.toBytes(), rule.field);
        LocalDateTime moment = text == null ? null : rule.parse(text);
        return moment == null ? null : TimestampData.fromLocalDateTime(moment);
    }

    /** The last top-level value of the field if it is a string; null for anything malformed. */
    private String topLevelString(byte[] bytes, String field) {
        try (JsonParser parser = factory.createParser(bytes)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            String found = null;
            JsonToken token;
            while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
                boolean wanted = field.equals(parser.currentName());
                JsonToken value = parser.nextToken();
                if (wanted) {
                    found = value == JsonToken.VALUE_STRING ? parser.getText() : null;
                }
                parser.skipChildren();
            }
            if (token != JsonToken.END_OBJECT || parser.nextToken() != null) {
                return null;
            }
            return found;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        DataType string = DataTypes.STRING().bridgedTo(StringData.class);
        return TypeInference.newBuilder()
                .typedArguments(string, string)
                .outputTypeStrategy(TypeStrategies.explicit(DataTypes.TIMESTAMP(3).bridgedTo(TimestampData.class)))
                .build();
    }
}
