package dev.runlink.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.runlink.spark.delivery.Transport;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.ThreadMXBean;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryProgressEvent;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryStartedEvent;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryTerminatedEvent;
import scala.Option;

/**
 * scripts/bench_streaming.py's JVM side: one query of N synthetic micro-batches (Spark's own QueryProgressEvent
 * objects, one every {@code spacingMs} of Spark time) through RunlinkStreamingListener and the real delivery to a
 * transport that counts what it is sent. Prints one line {@code BENCH {json}}: events by type, batches per
 * progress event, bytes sent, and the used heap after full GCs before the query, after 10% of its batches and
 * after all of them (still running: the listener holds its window), and after the end.
 *
 * <p>Args: batches, interval seconds, spacing ms.
 */
public final class StreamingBench {
    private StreamingBench() {}

    private static long usedAfterGc(MemoryMXBean memory) {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        return memory.getHeapMemoryUsage().getUsed();
    }

    public static void main(String[] args) throws Exception {
        int batches = Integer.parseInt(args[0]);
        String interval = args[1];
        long spacingMs = Long.parseLong(args[2]);
        final Map<String, AtomicLong> byType = new HashMap<>();
        final ArrayNode perInterval = TestSupport.JSON.createArrayNode();
        final AtomicLong bytes = new AtomicLong();
        Transport counting = body -> {
            bytes.addAndGet(body.length);
            for (JsonNode event : TestSupport.JSON.readTree(TestSupport.gunzip(body)).get("events")) {
                String type = event.get("type").asText();
                synchronized (byType) {
                    byType.computeIfAbsent(type, t -> new AtomicLong()).incrementAndGet();
                    if (type.startsWith("spark_streaming_query.p")) {
                        perInterval.add(event.get("payload").get("batches").asLong());
                    }
                }
            }
            return new Transport.Response(202, "{}");
        };
        Agent agent = new Agent(TestSupport.settings("spark.runlink.batchIntervalMs", "200"), counting);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "local-bench");
        conf.put(RunlinkStreamingListener.INTERVAL_KEY, interval);
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long before = usedAfterGc(memory);
        RunlinkStreamingListener listener = new RunlinkStreamingListener(conf, agent);
        UUID query = UUID.randomUUID();
        UUID run = UUID.randomUUID();
        long t0 = Instant.parse("2026-12-03T12:00:00Z").toEpochMilli();
        listener.onQueryStarted(new QueryStartedEvent(query, run, "bench", Instant.ofEpochMilli(t0).toString()));
        long atTenth = 0;
        // the listener's own CPU time (a loaded machine's waits and building the synthetic events not counted)
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        long callbackNs = 0;
        for (int b = 0; b < batches; b++) {
            QueryProgressEvent event = StreamingListenerTest.progress(query, run, b,
                Instant.ofEpochMilli(t0 + b * spacingMs).toString(), spacingMs / 2, 100);
            long start = threads.getCurrentThreadCpuTime();
            listener.onQueryProgress(event);
            callbackNs += threads.getCurrentThreadCpuTime() - start;
            if (b == batches / 10) {
                atTenth = usedAfterGc(memory);
            }
        }
        long atEnd = usedAfterGc(memory);
        listener.onQueryTerminated(new QueryTerminatedEvent(query, run, Option.<String>empty()));
        if (!agent.delivery.flush(10_000)) {
            throw new IllegalStateException("events not delivered");
        }
        long after = usedAfterGc(memory);
        ObjectNode out = TestSupport.JSON.createObjectNode();
        out.put("batches", batches);
        out.put("interval_s", Long.parseLong(interval));
        out.put("query_seconds", batches * spacingMs / 1000);
        long total = 0;
        ObjectNode types = out.putObject("events_by_type");
        for (Map.Entry<String, AtomicLong> e : byType.entrySet()) {
            types.put(e.getKey(), e.getValue().get());
            total += e.getValue().get();
        }
        out.put("events_sent", total);
        out.put("bytes_sent_gzip", bytes.get());
        out.set("batches_per_progress_event", perInterval);
        out.put("callback_cpu_us_per_batch", callbackNs / 1000.0 / batches);
        out.put("heap_before_kb", before / 1024);
        out.put("heap_at_10pct_kb", atTenth / 1024);
        out.put("heap_at_100pct_kb", atEnd / 1024);
        out.put("heap_after_end_kb", after / 1024);
        out.put("growth_10pct_to_100pct_kb", (atEnd - atTenth) / 1024);
        System.out.println("BENCH " + TestSupport.JSON.writeValueAsString(out));
        agent.delivery.close();
    }
}
