package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.StringData;

import java.io.IOException;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The event contract compiled from {@code patternalarm.events.contract_spec()}: the checks of
 * {@code events.validate}, in its order, each answering with the reason text the spec carries.
 *
 * <p>Kinds are strict JSON types, as in {@code events._kind_matches}: a string is a non-empty JSON
 * string; a number is a JSON number (a boolean or a numeric string is not; NaN cannot occur since the
 * parser refuses it like Python's decoder does); absent means missing or JSON null.
 */
final class Contract {

    /**
     * Outcome of {@link #check}: the reason (null when valid), the event's domain and its timestamp
     * when the contract accepts it (also for an event rejected for another reason: the source's event
     * time reads it, as the tokenizer it replaced did).
     */
    static final class Verdict {
        final StringData reason;
        final String domain;
        final LocalDateTime time;

        Verdict(StringData reason, String domain, LocalDateTime time) {
            this.reason = reason;
            this.domain = domain;
            this.time = time;
        }
    }

    private enum Kind { STRING, NUMBER, ARRAY, OBJECT }

    private static final class Field {
        final String name;
        final Kind kind;
        final boolean required;
        final StringData missing;
        final StringData wrongKind;

        Field(JsonNode spec) {
            name = text(spec, "name");
            kind = Kind.valueOf(text(spec, "kind").toUpperCase());
            required = spec.path("required").asBoolean(true);
            missing = StringData.fromString(text(spec, "missing"));
            wrongKind = StringData.fromString(text(spec, "wrong_kind"));
        }
    }

    private static final class SameValue {
        final String domain;
        final String field;
        final String other;
        final StringData reason;

        SameValue(JsonNode spec) {
            domain = text(spec, "domain");
            field = text(spec, "field");
            other = text(spec, "other");
            reason = StringData.fromString(text(spec, "reason"));
        }
    }

    final StringData malformedJson;
    final StringData notAnObject;
    final StringData unknownDomain;
    final List<String> domains = new ArrayList<>();
    private final Map<String, Field[]> fields = new HashMap<>();
    private final TimestampRule timestamp;
    private final StringData badTimestamp;
    private final List<SameValue> sameValue = new ArrayList<>();

    private Contract(JsonNode spec) {
        malformedJson = StringData.fromString(text(spec, "malformed_json"));
        notAnObject = StringData.fromString(text(spec, "not_an_object"));
        unknownDomain = StringData.fromString(text(spec, "unknown_domain"));
        JsonNode byDomain = spec.path("domains");
        byDomain.fieldNames().forEachRemaining(domain -> {
            List<Field> list = new ArrayList<>();
            byDomain.get(domain).forEach(f -> list.add(new Field(f)));
            domains.add(domain);
            fields.put(domain, list.toArray(new Field[0]));
        });
        timestamp = new TimestampRule(spec.path("timestamp"));
        badTimestamp = StringData.fromString(text(spec.path("timestamp"), "reason"));
        spec.path("same_value").forEach(r -> sameValue.add(new SameValue(r)));
    }

    static Contract parse(ObjectMapper mapper, String json) {
        try {
            return new Contract(mapper.readTree(json));
        } catch (IOException e) {
            throw new IllegalArgumentException("contract literal is not JSON: " + e.getMessage(), e);
        }
    }

    Verdict check(JsonNode event) {
        if (!event.isObject()) {
            return new Verdict(notAnObject, null, null);
        }
        JsonNode ts = event.get(timestamp.field);
        LocalDateTime time = ts != null && ts.isTextual() ? timestamp.parse(ts.textValue()) : null;
        JsonNode domainNode = event.get("domain");
        String domain = domainNode != null && domainNode.isTextual() ? domainNode.textValue() : null;
        Field[] domainFields = domain == null ? null : fields.get(domain);
        if (domainFields == null) {
            return new Verdict(unknownDomain, null, time);
        }
        for (Field f : domainFields) {
            JsonNode value = event.get(f.name);
            if (value == null || value.isNull()) {
                if (f.required) {
                    return new Verdict(f.missing, domain, time);
                }
                continue;
            }
            if (!matches(value, f.kind)) {
                return new Verdict(f.wrongKind, domain, time);
            }
        }
        if (time == null) {
            return new Verdict(badTimestamp, domain, null);
        }
        for (SameValue rule : sameValue) {
            if (rule.domain.equals(domain) && !equal(event.get(rule.field), event.get(rule.other))) {
                return new Verdict(rule.reason, domain, time);
            }
        }
        return new Verdict(null, domain, time);
    }

    private static boolean matches(JsonNode value, Kind kind) {
        switch (kind) {
            case STRING:
                return value.isTextual() && !value.textValue().isEmpty();
            case NUMBER:
                return value.isNumber();
            case ARRAY:
                return value.isArray();
            default:
                return value.isObject();
        }
    }

    private static boolean equal(JsonNode a, JsonNode b) {
        return a == null ? b == null : a.equals(b);
    }

    static String text(JsonNode spec, String key) {
        JsonNode v = spec.get(key);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException("spec entry lacks string '" + key + "': " + spec);
        }
        return v.textValue();
    }

    static Map<String, String> stringMap(JsonNode node) {
        Map<String, String> out = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
