package dev.runlink.spark.streaming;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import dev.runlink.spark.protocol.Event;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/** The aggregation: how many events a query sends and what they add up to, on Spark's batch times. */
public class StreamingQueriesTest {
    private static final long T0 = 1_780_000_000_000L;
    private static final Map<String, Object> SOURCE = Collections.<String, Object>singletonMap("agent", "jvm");

    private final List<Event> sent = new ArrayList<>();
    private long now = T0;
    private final StreamingQueries queries = new StreamingQueries(sent::add,
        Collections.singletonMap("dag_id", "etl"), "local-1", null, 30_000, () -> now);

    static BatchProgress batch(String run, long batchId, long endMillis, long durationMs, long rows) {
        return new BatchProgress("q-" + run, run, "events", batchId, endMillis, durationMs, rows, null, null);
    }

    private List<Map<String, Object>> payloads(String type) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Event event : sent) {
            if (event.type.equals(type)) {
                @SuppressWarnings("unchecked")
                Map<String, Object> payload = (Map<String, Object>) event.toWire(SOURCE).get("payload");
                out.add(payload);
            }
        }
        return out;
    }

    @Test
    public void aLongQuerySendsOneProgressPerIntervalAndTotalsAtTheEnd() {
        queries.started("q-r1", "r1", "events", T0, null);
        int batches = 3_600; // one an second for an hour: 120 intervals of 30 s
        for (int b = 0; b < batches; b++) {
            queries.progress(batch("r1", b, T0 + (b + 1) * 1_000L, 200 + b % 3, 10));
        }
        now = T0 + batches * 1_000L + 500;
        queries.terminated("q-r1", "r1", null);

        assertEquals(1, payloads(StreamingQueries.START).size());
        List<Map<String, Object>> progress = payloads(StreamingQueries.PROGRESS);
        assertEquals(120, progress.size());
        Map<String, Object> first = progress.get(0);
        assertEquals(30L, first.get("batches"));
        assertEquals(300L, first.get("input_rows"));
        assertEquals(10.0, (Double) first.get("input_rows_per_s"), 1e-9);
        assertEquals(200L, first.get("batch_ms_min"));
        assertEquals(202L, first.get("batch_ms_max"));
        assertEquals(29L, first.get("latest_batch_id"));
        long counted = 0;
        for (Map<String, Object> p : progress) {
            counted += (Long) p.get("batches");
        }
        Map<String, Object> end = payloads(StreamingQueries.END).get(0);
        assertEquals("every batch in exactly one interval", (long) batches, counted + (Long) end.get("batches"));
        assertEquals((long) batches, end.get("total_batches"));
        assertEquals(batches * 10L, end.get("total_input_rows"));
        assertEquals((long) batches - 1, end.get("latest_batch_id"));
        assertEquals(202L, end.get("max_batch_ms"));
        assertEquals(true, end.get("success"));
        assertEquals(0, queries.runningCount());
    }

    @Test
    public void anAvailableNowLoadShorterThanAnIntervalReportsItsTotalsAtTheEnd() {
        queries.started("q-r2", "r2", "load", T0, null);
        queries.progress(batch("r2", 0, T0 + 900, 800, 1_000));
        queries.progress(batch("r2", 1, T0 + 1_500, 500, 250));
        now = T0 + 2_000;
        queries.terminated("q-r2", "r2", null);

        assertEquals(0, payloads(StreamingQueries.PROGRESS).size());
        Map<String, Object> end = payloads(StreamingQueries.END).get(0);
        assertEquals(2L, end.get("batches"));
        assertEquals(2L, end.get("total_batches"));
        assertEquals(1_250L, end.get("total_input_rows"));
        assertEquals(1_300L, end.get("total_batch_ms"));
        assertEquals(625.0, (Double) end.get("input_rows_per_s"), 1e-9);
        assertEquals(1_250 * 1000.0 / 1_300, (Double) end.get("processed_rows_per_s"), 1e-9);
        assertEquals(1L, end.get("latest_batch_id"));
    }

    @Test
    public void aRepeatedBatchIdIsNotCountedTwice() {
        queries.progress(batch("r3", 4, T0 + 1_000, 100, 5));
        queries.progress(batch("r3", 4, T0 + 11_000, 0, 0)); // Spark < 3.5 while waiting for data
        queries.terminated("q-r3", "r3", null);
        Map<String, Object> end = payloads(StreamingQueries.END).get(0);
        assertEquals(1L, end.get("total_batches"));
        assertEquals(5L, end.get("total_input_rows"));
    }

    @Test
    public void aFailedQueryCarriesItsException() {
        queries.started("q-r4", "r4", null, T0, null);
        queries.terminated("q-r4", "r4", "org.apache.spark.sql.streaming.StreamingQueryException: boom\n"
            + "=== Streaming Query ===\nat x.y(Z.java:1)");
        Map<String, Object> end = payloads(StreamingQueries.END).get(0);
        assertEquals(false, end.get("success"));
        @SuppressWarnings("unchecked")
        Map<String, Object> error = (Map<String, Object>) end.get("error");
        assertEquals("org.apache.spark.sql.streaming.StreamingQueryException", error.get("type"));
        assertEquals("boom", error.get("message"));
        assertTrue(((String) error.get("traceback")).contains("Z.java:1"));
        assertEquals(0L, end.get("total_batches"));
        assertNull(end.get("latest_batch_id"));
    }

    @Test
    public void messagesWithoutAClassNameStayWhole() {
        Map<String, Object> error = StreamingQueries.error("Query stopped: by user");
        assertNull(error.get("type"));
        assertEquals("Query stopped: by user", error.get("message"));
    }

    @Test
    public void replayedEventIdsAreStableAndDistinct() {
        StreamingQueries again = new StreamingQueries(sent::add, new HashMap<String, String>(), "local-1", null,
            30_000, () -> now);
        queries.started("q-r5", "r5", "x", T0, null);
        again.started("q-r5", "r5", "x", T0, null);
        queries.started("q-r5", "r5", "x", T0, null); // Spark posts the start twice to some listeners: sent once
        assertEquals(2, sent.size());
        Map<String, Object> a = sent.get(0).toWire(SOURCE);
        Map<String, Object> b = sent.get(1).toWire(SOURCE);
        assertEquals(a.get("id"), b.get("id"));
        queries.terminated("q-r5", "r5", null);
        assertFalse(sent.get(2).toWire(SOURCE).get("id").equals(a.get("id")));
    }

    @Test
    public void noApplicationNoEvents() {
        StreamingQueries orphan = new StreamingQueries(sent::add, null, null, null, 30_000, () -> now);
        orphan.started("q", "r", "x", T0, null);
        orphan.terminated("q", "r", null);
        assertEquals(0, sent.size());
    }

    @Test
    public void runningQueriesAreBounded() {
        for (int i = 0; i < StreamingQueries.MAX_QUERIES + 5; i++) {
            queries.started("q" + i, "run" + i, null, T0, null);
        }
        assertEquals(StreamingQueries.MAX_QUERIES, queries.runningCount());
        assertEquals(5, queries.untracked());
    }
}
