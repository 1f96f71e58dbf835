package io.patternalarm.udf;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of a JSON value that the format reads: the keys wanted when the value is an object, each
 * with its own shape below, and the shape of every element when a column's path fans out over the
 * value as an array ({@code key[]}). The contract and the columns register their paths while they
 * compile; {@link FieldValue#read} then keeps only what is registered and lets the tokenizer skip the
 * rest, which still checks its syntax. This replaced a full tree per event (a map, a node and a
 * String for every field, read or not), the format's largest cost (docs/performance.md).
 */
final class FieldShape {

    private final Map<String, Integer> slots = new HashMap<>();
    private final List<FieldShape> below = new ArrayList<>();
    private FieldShape element;

    /** The slot of {@code key}, registered when new: where FieldValue keeps that key's value. */
    int register(String key) {
        Integer slot = slots.get(key);
        if (slot != null) {
            return slot;
        }
        slots.put(key, below.size());
        below.add(new FieldShape());
        return below.size() - 1;
    }

    /** The slot of {@code key}, or -1 when nothing reads it. */
    int slot(String key) {
        Integer slot = slots.get(key);
        return slot == null ? -1 : slot;
    }

    int size() {
        return below.size();
    }

    /** The shape of the value in {@code slot}. */
    FieldShape below(int slot) {
        return below.get(slot);
    }

    /** The shape of each element, registered on first use; null until a path fans out here. */
    FieldShape element(boolean register) {
        if (element == null && register) {
            element = new FieldShape();
        }
        return element;
    }
}
