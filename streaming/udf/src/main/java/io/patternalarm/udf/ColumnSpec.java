package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One typed column of the event format (EventFormatFactory), compiled from {@code streaming.event_columns.columns_spec()}.
 *
 * <p>Same rule as {@code event_columns.extract}: a per-domain path ({@code "*"} for every domain) of
 * object keys, {@code key[]} to take each element of an array; values keep their strict JSON type
 * (STRING takes JSON strings only, DOUBLE JSON numbers only, BOOLEAN JSON booleans only, anything else
 * is NULL); {@code join} glues the strings reached with {@code arg}, {@code contains} says whether one
 * of them equals {@code arg}.
 */
final class ColumnSpec {

    enum Type {
        STRING, DOUBLE, BOOLEAN;

        DataType dataType() {
            switch (this) {
                case DOUBLE:
                    return DataTypes.DOUBLE();
                case BOOLEAN:
                    return DataTypes.BOOLEAN();
                default:
                    return DataTypes.STRING();
            }
        }
    }

    private enum Op { VALUE, JOIN, CONTAINS }

    /** A compiled path: the slot of each key in the events' shape, and whether it fans out over an array. */
    private static final class Path {
        final int[] slots;
        final boolean[] many;
        final boolean fansOut;

        Path(String text, FieldShape event) {
            String[] parts = text.split("\\.");
            slots = new int[parts.length];
            many = new boolean[parts.length];
            boolean any = false;
            FieldShape shape = event;
            for (int i = 0; i < parts.length; i++) {
                many[i] = parts[i].endsWith("[]");
                String key = many[i] ? parts[i].substring(0, parts[i].length() - 2) : parts[i];
                slots[i] = shape.register(key);
                shape = shape.below(slots[i]);
                if (many[i]) {
                    shape = shape.element(true);
                }
                any |= many[i];
            }
            fansOut = any;
        }

        /** The one value a path without [] reaches, or null. */
        FieldValue single(FieldValue value) {
            for (int slot : slots) {
                if (value.kind != FieldValue.Kind.OBJECT) {
                    return null;
                }
                value = value.field(slot);
            }
            return value.isMissing() ? null : value;
        }

        void all(FieldValue value, int i, List<FieldValue> out) {
            if (i == slots.length) {
                out.add(value);
                return;
            }
            if (value.kind != FieldValue.Kind.OBJECT) {
                return;
            }
            FieldValue child = value.field(slots[i]);
            if (child.isMissing()) {
                return;
            }
            if (!many[i]) {
                all(child, i + 1, out);
            } else {
                for (int k = 0; k < child.itemCount(); k++) {
                    all(child.item(k), i + 1, out);
                }
            }
        }
    }

    final String name;
    final Type type;
    private final Op op;
    private final String arg;
    private final Path[] byDomain; // by the contract's domain index; null: the column is NULL there
    private final List<FieldValue> found = new ArrayList<>(); // reused by extract: one event at a time

    private ColumnSpec(JsonNode spec, List<String> domains, FieldShape event) {
        name = Contract.text(spec, "name");
        type = Type.valueOf(Contract.text(spec, "type"));
        op = Op.valueOf(spec.path("op").asText("value").toUpperCase());
        arg = spec.hasNonNull("arg") ? spec.get("arg").asText() : null;
        if (op == Op.JOIN && type != Type.STRING || op == Op.CONTAINS && type != Type.BOOLEAN) {
            throw new IllegalArgumentException("column " + name + ": op " + op + " does not give " + type);
        }
        Map<String, String> sources = Contract.stringMap(spec.path("sources"));
        byDomain = new Path[domains.size()];
        for (int d = 0; d < byDomain.length; d++) { // "*" resolved once, so extract does no lookup
            String path = sources.getOrDefault(domains.get(d), sources.get("*"));
            byDomain[d] = path == null ? null : new Path(path, event);
        }
    }

    /** Compiles the columns, registering every path they read in {@code event}, the events' shape. */
    static List<ColumnSpec> parseAll(ObjectMapper mapper, String json, List<String> domains, FieldShape event) {
        JsonNode specs;
        try {
            specs = mapper.readTree(json);
        } catch (IOException e) {
            throw new IllegalArgumentException("columns literal is not JSON: " + e.getMessage(), e);
        }
        if (specs == null || !specs.isArray()) {
            throw new IllegalArgumentException("columns literal must be a JSON array");
        }
        List<ColumnSpec> out = new ArrayList<>();
        specs.forEach(s -> out.add(new ColumnSpec(s, domains, event)));
        return out;
    }

    /** The column's internal value (StringData, Double, Boolean or null) for a valid event of the
     * contract's domain number {@code domain}. */
    Object extract(FieldValue event, int domain) {
        Path path = byDomain[domain];
        if (path == null) {
            return null;
        }
        if (op == Op.VALUE && !path.fansOut) {
            return typed(path.single(event));
        }
        found.clear();
        path.all(event, 0, found);
        switch (op) {
            case JOIN: {
                StringBuilder out = new StringBuilder();
                boolean first = true;
                for (FieldValue v : found) {
                    if (v.kind == FieldValue.Kind.STRING) {
                        if (!first) {
                            out.append(arg);
                        }
                        out.append(v.text);
                        first = false;
                    }
                }
                return StringData.fromString(out.toString());
            }
            case CONTAINS:
                for (FieldValue v : found) {
                    if (v.kind == FieldValue.Kind.STRING && v.text.equals(arg)) {
                        return Boolean.TRUE;
                    }
                }
                return Boolean.FALSE;
            default:
                return found.isEmpty() ? null : typed(found.get(0));
        }
    }

    private Object typed(FieldValue v) {
        if (v == null) {
            return null;
        }
        switch (type) {
            case STRING:
                return v.kind == FieldValue.Kind.STRING ? StringData.fromString(v.text) : null;
            case DOUBLE:
                return v.kind == FieldValue.Kind.NUMBER ? v.number : null;
            default:
                return v.kind == FieldValue.Kind.BOOLEAN ? v.bool : null;
        }
    }
}
