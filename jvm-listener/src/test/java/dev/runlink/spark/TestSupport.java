package dev.runlink.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.delivery.Transport;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.zip.GZIPInputStream;

/**
 * Shared by the tests of every package: repo paths (passed by Gradle), settings, a recording transport,
 * condition waits.
 */
public final class TestSupport {
    public static final ObjectMapper JSON = new ObjectMapper();

    private TestSupport() {}

    static File repo() {
        String repo = System.getProperty("runlink.repo");
        if (repo == null) {
            throw new IllegalStateException("run through Gradle: -Drunlink.repo=<repository root> is missing");
        }
        return new File(repo);
    }

    static File outputDir() {
        File dir = new File(System.getProperty("runlink.testOutput", "build/test-events"));
        dir.mkdirs();
        return dir;
    }

    public static JsonNode vectors(String name) throws IOException {
        return JSON.readTree(new File(repo(), "tests/vectors/" + name));
    }

    public static Settings settings(String... keyValues) {
        Map<String, String> conf = new HashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) {
            conf.put(keyValues[i], keyValues[i + 1]);
        }
        return Settings.resolve(conf, Collections.<String, String>emptyMap());
    }

    public static byte[] gunzip(byte[] body) throws IOException {
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(body))) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        }
    }

    /** Waits for a condition with a deadline (no fixed sleeps): fails the test when it does not come. */
    public static void await(String what, long timeoutMs, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what);
            }
            Thread.sleep(5); // poll interval; the condition decides
        }
    }

    /** Accepts every batch and keeps the decoded events. */
    static final class RecordingTransport implements Transport {
        final List<JsonNode> batches = Collections.synchronizedList(new ArrayList<JsonNode>());

        @Override
        public Response post(byte[] gzippedBatch) throws IOException {
            batches.add(JSON.readTree(gunzip(gzippedBatch)));
            return new Response(202, "{}");
        }

        List<JsonNode> events() {
            List<JsonNode> out = new ArrayList<>();
            synchronized (batches) {
                for (JsonNode batch : batches) {
                    for (JsonNode event : batch.get("events")) {
                        out.add(event);
                    }
                }
            }
            return out;
        }

        List<JsonNode> events(String type) {
            List<JsonNode> out = new ArrayList<>();
            for (JsonNode event : events()) {
                if (event.get("type").asText().equals(type)) {
                    out.add(event);
                }
            }
            return out;
        }
    }
}
