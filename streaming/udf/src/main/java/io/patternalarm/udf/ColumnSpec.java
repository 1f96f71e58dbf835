package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
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

    /** A compiled path: keys, and for each whether it fans out over an array. */
    private static final class Path {
        final String[] keys;
        final boolean[] many;
        final boolean fansOut;

        Path(String text) {
            String[] parts = text.split("\\.");
            keys = new String[parts.length];
            many = new boolean[parts.length];
            boolean any = false;
            for (int i = 0; i < parts.length; i++) {
                many[i] = parts[i].endsWith("[]");
                keys[i] = many[i] ? parts[i].substring(0, parts[i].length() - 2) : parts[i];
                any |= many[i];
            }
            fansOut = any;
        }

        /** The one value a path without [] reaches, or null. */
        JsonNode single(JsonNode node) {
            for (String key : keys) {
                if (node == null || !node.isObject()) {
                    return null;
                }
                node = node.get(key);
            }
            return node == null || node.isNull() ? null : node;
        }

        void all(JsonNode node, int i, List<JsonNode> out) {
            if (i == keys.length) {
                out.add(node);
                return;
            }
            if (!node.isObject()) {
                return;
            }
            JsonNode child = node.get(keys[i]);
            if (child == null || child.isNull()) {
                return;
            }
            if (!many[i]) {
                all(child, i + 1, out);
            } else if (child.isArray()) {
                for (JsonNode item : child) {
                    all(item, i + 1, out);
                }
            }
        }
    }

    final String name;
    final Type type;
    private final Op op;
    private final String arg;
    private final Map<String, Path> byDomain = new HashMap<>();

    private ColumnSpec(JsonNode spec, List<String> domains) {
        name = Contract.text(spec, "name");
        type = Type.valueOf(Contract.text(spec, "type"));
        op = Op.valueOf(spec.path("op").asText("value").toUpperCase());
        arg = spec.hasNonNull("arg") ? spec.get("arg").asText() : null;
        if (op == Op.JOIN && type != Type.STRING || op == Op.CONTAINS && type != Type.BOOLEAN) {
            throw new IllegalArgumentException("column " + name + ": op " + op + " does not give " + type);
        }
        Map<String, String> sources = Contract.stringMap(spec.path("sources"));
        if (domains != null) { // resolve "*" once, so eval does a single lookup
            for (String domain : domains) {
                String path = sources.getOrDefault(domain, sources.get("*"));
                if (path != null) {
                    byDomain.put(domain, new Path(path));
                }
            }
        }
    }

    static List<ColumnSpec> parseAll(ObjectMapper mapper, String json, List<String> domains) {
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
        specs.forEach(s -> out.add(new ColumnSpec(s, domains)));
        return out;
    }

    /** The column's internal value (StringData, Double, Boolean or null) for a valid event. */
    Object extract(JsonNode event, String domain) {
        Path path = byDomain.get(domain);
        if (path == null) {
            return null;
        }
        if (op == Op.VALUE && !path.fansOut) {
            return typed(path.single(event));
        }
        List<JsonNode> found = new ArrayList<>();
        path.all(event, 0, found);
        switch (op) {
            case JOIN: {
                StringBuilder out = new StringBuilder();
                boolean first = true;
                for (JsonNode v : found) {
                    if (v.isTextual()) {
                        if (!first) {
                            out.append(arg);
                        }
                        out.append(v.textValue());
                        first = false;
                    }
                }
                return StringData.fromString(out.toString());
            }
            case CONTAINS:
                for (JsonNode v : found) {
                    if (v.isTextual() && v.textValue().equals(arg)) {
                        return Boolean.TRUE;
                    }
                }
                return Boolean.FALSE;
            default:
                return found.isEmpty() ? null : typed(found.get(0));
        }
    }

    private Object typed(JsonNode v) {
        if (v == null) {
            return null;
        }
        switch (type) {
            case STRING:
                return v.isTextual() ? StringData.fromString(v.textValue()) : null;
            case DOUBLE:
                return v.isNumber() ? v.doubleValue() : null;
            default:
                return v.isBoolean() ? v.booleanValue() : null;
        }
    }
}
