package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The contract's timestamp rule, from the "timestamp" entry of {@code events.contract_spec()}: a
 * fixed-width layout in which each letter of {@code parts} is one ASCII digit of that part and any
 * other character stands for itself, then a real moment, as {@code events.parse_timestamp} checks.
 * Checked character by character: the same test as Python's regex of the layout, without a regex
 * engine on a path that runs three times per event.
 */
final class TimestampRule {

    private static final List<String> PARTS =
            Arrays.asList("year", "month", "day", "hour", "minute", "second", "millisecond");

    final String field;
    private final String layout;
    private final int[] partAt; // for each layout position: index into PARTS, or -1 for a literal
    private final int minYear;

    TimestampRule(JsonNode spec) {
        field = Contract.text(spec, "field");
        layout = Contract.text(spec, "layout");
        Map<String, String> parts = Contract.stringMap(spec.path("parts"));
        partAt = new int[layout.length()];
        boolean[] seen = new boolean[PARTS.size()];
        for (int i = 0; i < layout.length(); i++) {
            String name = parts.get(String.valueOf(layout.charAt(i)));
            partAt[i] = name == null ? -1 : PARTS.indexOf(name);
            if (name != null && partAt[i] < 0) {
                throw new IllegalArgumentException("contract timestamp part '" + name + "' is unknown");
            }
            if (partAt[i] >= 0) {
                seen[partAt[i]] = true;
            }
        }
        for (int i = 0; i < seen.length; i++) {
            if (!seen[i]) {
                throw new IllegalArgumentException("contract timestamp layout lacks the " + PARTS.get(i));
            }
        }
        minYear = spec.path("min_year").asInt(1);
    }

    /** The moment the text names, or null when the contract refuses it. */
    LocalDateTime parse(String text) {
        if (text.length() != layout.length()) {
            return null;
        }
        int[] value = new int[PARTS.size()];
        for (int i = 0; i < partAt.length; i++) {
            char c = text.charAt(i);
            if (partAt[i] < 0) {
                if (c != layout.charAt(i)) {
                    return null;
                }
            } else if (c >= '0' && c <= '9') {
                value[partAt[i]] = value[partAt[i]] * 10 + (c - '0');
            } else {
                return null;
            }
        }
        if (value[0] < minYear) {
            return null;
        }
        try {
            return LocalDateTime.of(value[0], value[1], value[2], value[3], value[4], value[5], value[6] * 1_000_000);
        } catch (DateTimeException e) {
            return null;
        }
    }
}
