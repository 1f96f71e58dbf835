package io.patternalarm.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParseException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * One JSON value as far as its {@link FieldShape} reads it: its kind always, its text, number or
 * boolean, the values of the registered keys of an object and the elements of an array that a path
 * fans out over. The values are reused from one event to the next (the deserializer reads one
 * payload at a time), so a steady stream allocates only the strings it reads. A key that occurs
 * twice keeps its last value, as Python's json.loads and Jackson's tree do.
 */
final class FieldValue {

    enum Kind { ABSENT, NULL, STRING, NUMBER, BOOLEAN, OBJECT, ARRAY }

    private static final FieldValue ABSENT = new FieldValue(new FieldShape());

    private final FieldShape shape;
    private FieldValue[] fields; // by slot, when an object
    private final List<FieldValue> items = new ArrayList<>(); // reused; the first itemCount are this array's
    private int itemCount;

    Kind kind = Kind.ABSENT;
    String text;
    double number;
    boolean bool;

    FieldValue(FieldShape shape) {
        this.shape = shape;
    }

    /** Absent or JSON null: what the contract calls missing. */
    boolean isMissing() {
        return kind == Kind.ABSENT || kind == Kind.NULL;
    }

    /** The value of an object's registered key (absent when this is not an object). */
    FieldValue field(int slot) {
        return kind == Kind.OBJECT ? fields[slot] : ABSENT;
    }

    /** The elements of an array its shape fans out over (none otherwise). */
    int itemCount() {
        return kind == Kind.ARRAY ? itemCount : 0;
    }

    FieldValue item(int index) {
        return items.get(index);
    }

    /** The same scalar: the contract's same_value rule (absent equals absent). */
    boolean sameAs(FieldValue other) {
        if (isMissing() || other.isMissing()) {
            return isMissing() == other.isMissing();
        }
        if (kind != other.kind) {
            return false;
        }
        switch (kind) {
            case STRING:
                return text.equals(other.text);
            case NUMBER:
                return number == other.number;
            case BOOLEAN:
                return bool == other.bool;
            default:
                return false; // objects and arrays are not read whole: Contract refuses rules on them
        }
    }

    /** Reads the value at the parser's current token, leaving the parser on its last token. */
    void read(JsonParser parser) throws IOException {
        text = null;
        itemCount = 0;
        JsonToken token = parser.currentToken();
        switch (token) {
            case START_OBJECT:
                kind = Kind.OBJECT;
                readObject(parser);
                return;
            case START_ARRAY:
                kind = Kind.ARRAY;
                readArray(parser);
                return;
            case VALUE_STRING:
                kind = Kind.STRING;
                text = parser.getText();
                return;
            case VALUE_NUMBER_INT:
            case VALUE_NUMBER_FLOAT:
                kind = Kind.NUMBER;
                number = parser.getDoubleValue();
                return;
            case VALUE_TRUE:
            case VALUE_FALSE:
                kind = Kind.BOOLEAN;
                bool = token == JsonToken.VALUE_TRUE;
                return;
            case VALUE_NULL:
                kind = Kind.NULL;
                return;
            default:
                throw new JsonParseException(parser, "not a JSON value: " + token);
        }
    }

    private void readObject(JsonParser parser) throws IOException {
        if (fields == null) {
            fields = new FieldValue[shape.size()];
            for (int i = 0; i < fields.length; i++) {
                fields[i] = new FieldValue(shape.below(i));
            }
        }
        for (FieldValue f : fields) {
            f.kind = Kind.ABSENT;
        }
        String name;
        while ((name = parser.nextFieldName()) != null) {
            parser.nextToken();
            int slot = shape.slot(name);
            if (slot < 0) {
                parser.skipChildren();
            } else {
                fields[slot].read(parser);
            }
        }
    }

    private void readArray(JsonParser parser) throws IOException {
        FieldShape element = shape.element(false);
        if (element == null) {
            parser.skipChildren();
            return;
        }
        JsonToken token;
        while ((token = parser.nextToken()) != JsonToken.END_ARRAY) {
            if (token == null) {
                throw new JsonParseException(parser, "unexpected end of input in an array");
            }
            if (itemCount == items.size()) {
                items.add(new FieldValue(element));
            }
            items.get(itemCount++).read(parser);
        }
    }
}
