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
     * Outcome of {@link #check}: the reason (null when valid), the event's domain (its index in
     * {@link #domains}, -1 when unknown) and its timestamp when the contract accepts it (also for an
     * event rejected for another reason: the source's event time reads it, as the tokenizer it
     * replaced did).
     */
    static final class Verdict {
        final StringData reason;
        final int domain;
        final LocalDateTime time;

        Verdict(StringData reason, int domain, LocalDateTime time) {
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
        final int slot;

        Field(JsonNode spec, FieldShape event) {
            name = text(spec, "name");
            slot = event.register(name);
            kind = Kind.valueOf(text(spec, "kind").toUpperCase());
            required = spec.path("required").asBoolean(true);
            missing = StringData.fromString(text(spec, "missing"));
            wrongKind = StringData.fromString(text(spec, "wrong_kind"));
        }
    }

    /**
     * A same_value rule, resolved at compile time to its domain's index and its fields' slots. It
     * compares scalars (FieldValue keeps an object's or an array's registered parts only, not the
     * whole value), so a rule on a field the contract does not declare as a string or a number is
     * refused here rather than rejecting every event of its domain.
     */
    private static final class SameValue {
        final int domain;
        final int field;
        final int other;
        final StringData reason;

        SameValue(JsonNode spec, FieldShape event, Map<String, Integer> domainIndex, List<Field[]> fields) {
            String domainName = text(spec, "domain");
            Integer index = domainIndex.get(domainName);
            if (index == null) {
                throw new IllegalArgumentException("same_value rule " + spec + " names domain '" + domainName
                        + "', which the contract does not define: fix SAME_VALUE_RULES in patternalarm/events.py");
            }
            domain = index;
            field = scalarSlot(spec, text(spec, "field"), domainName, fields.get(index));
            other = scalarSlot(spec, text(spec, "other"), domainName, fields.get(index));
            reason = StringData.fromString(text(spec, "reason"));
        }

        private static int scalarSlot(JsonNode spec, String name, String domain, Field[] declared) {
            for (Field f : declared) {
                if (f.name.equals(name)) {
                    if (f.kind != Kind.STRING && f.kind != Kind.NUMBER) {
                        throw new IllegalArgumentException("same_value rule " + spec + " compares '" + name
                                + "', a " + f.kind.name().toLowerCase() + " field of domain " + domain
                                + ": the event format compares strings and numbers only; compare scalar fields"
                                + " in SAME_VALUE_RULES (patternalarm/events.py)");
                    }
                    return f.slot;
                }
            }
            throw new IllegalArgumentException("same_value rule " + spec + " compares '" + name
                    + "', which domain " + domain + " does not declare: add it to DOMAIN_FIELDS or fix"
                    + " SAME_VALUE_RULES in patternalarm/events.py");
        }
    }

    final StringData malformedJson;
    final StringData notAnObject;
    final StringData unknownDomain;
    final List<String> domains = new ArrayList<>();
    private final Map<String, Integer> domainIndex = new HashMap<>();
    private final List<Field[]> fields = new ArrayList<>(); // by domain index
    private final int domainSlot;
    private final int timestampSlot;
    private final TimestampRule timestamp;
    private final StringData badTimestamp;
    private final List<SameValue> sameValue = new ArrayList<>();

    private Contract(JsonNode spec, FieldShape event) {
        malformedJson = StringData.fromString(text(spec, "malformed_json"));
        notAnObject = StringData.fromString(text(spec, "not_an_object"));
        unknownDomain = StringData.fromString(text(spec, "unknown_domain"));
        JsonNode byDomain = spec.path("domains");
        byDomain.fieldNames().forEachRemaining(domain -> {
            List<Field> list = new ArrayList<>();
            byDomain.get(domain).forEach(f -> list.add(new Field(f, event)));
            domainIndex.put(domain, domains.size());
            domains.add(domain);
            fields.add(list.toArray(new Field[0]));
        });
        domainSlot = event.register("domain");
        timestamp = new TimestampRule(spec.path("timestamp"));
        timestampSlot = event.register(timestamp.field);
        badTimestamp = StringData.fromString(text(spec.path("timestamp"), "reason"));
        spec.path("same_value").forEach(r -> sameValue.add(new SameValue(r, event, domainIndex, fields)));
    }

    /** Compiles the contract, registering every field it reads in {@code event}, the events' shape. */
    static Contract parse(ObjectMapper mapper, String json, FieldShape event) {
        try {
            return new Contract(mapper.readTree(json), event);
        } catch (IOException e) {
            throw new IllegalArgumentException("contract literal is not JSON: " + e.getMessage(), e);
        }
    }

    /** The contract's verdict on one event, read as {@code parse}'s shape registered it. */
    Verdict check(FieldValue event) {
        if (event.kind != FieldValue.Kind.OBJECT) {
            return new Verdict(notAnObject, -1, null);
        }
        FieldValue ts = event.field(timestampSlot);
        LocalDateTime time = ts.kind == FieldValue.Kind.STRING ? timestamp.parse(ts.text) : null;
        FieldValue domainValue = event.field(domainSlot);
        Integer domain = domainValue.kind == FieldValue.Kind.STRING ? domainIndex.get(domainValue.text) : null;
        if (domain == null) {
            return new Verdict(unknownDomain, -1, time);
        }
        for (Field f : fields.get(domain)) {
            FieldValue value = event.field(f.slot);
            if (value.isMissing()) {
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
            if (rule.domain == domain && !event.field(rule.field).sameAs(event.field(rule.other))) {
                return new Verdict(rule.reason, domain, time);
            }
        }
        return new Verdict(null, domain, time);
    }

    private static boolean matches(FieldValue value, Kind kind) {
        switch (kind) {
            case STRING:
                return value.kind == FieldValue.Kind.STRING && !value.text.isEmpty();
            case NUMBER:
                return value.kind == FieldValue.Kind.NUMBER;
            case ARRAY:
                return value.kind == FieldValue.Kind.ARRAY;
            default:
                return value.kind == FieldValue.Kind.OBJECT;
        }
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
