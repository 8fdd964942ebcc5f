package dev.runlink.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

/**
 * Collects the JSON the listeners really sent (through the recording transport) into
 * build/test-events/jvm-events.json, one batch; tests/jvm/test_jvm_events.py validates it against the schema.
 */
final class EventSamples {
    private static final ArrayNode EVENTS = TestSupport.JSON.createArrayNode();

    private EventSamples() {}

    static synchronized void add(List<JsonNode> events) {
        EVENTS.addAll(events);
        ObjectNode batch = TestSupport.JSON.createObjectNode();
        batch.set("events", EVENTS);
        try {
            TestSupport.JSON.writerWithDefaultPrettyPrinter()
                .writeValue(new File(TestSupport.outputDir(), "jvm-events.json"), batch);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
