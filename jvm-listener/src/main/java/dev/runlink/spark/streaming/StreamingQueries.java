package dev.runlink.spark.streaming;

import dev.runlink.spark.context.Ids;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The one place streaming figures are aggregated: a QueryWindow per running query run, and the events they turn
 * into. A run sends {@code spark_streaming_query.start}, at most one {@code .progress} per interval (at the first
 * batch that ends past it; intervals are measured on Spark's batch times, so replayed or synthetic progress
 * aggregates the same way) and a {@code .end} carrying the last, partial interval and the totals (an
 * {@code availableNow} load shorter than one interval reports everything there). Windows are dropped at the end,
 * and at most {@link #MAX_QUERIES} run at once, so the heap stays flat however long a query runs.
 *
 * <p>Synchronized: Spark calls onQueryStarted on the thread that starts the query, the rest on its listener thread.
 */
public final class StreamingQueries {
    public static final String START = "spark_streaming_query.start";
    public static final String PROGRESS = "spark_streaming_query.progress";
    public static final String END = "spark_streaming_query.end";
    static final int MAX_QUERIES = 1_000;
    static final int MAX_ERROR = 65_536;

    private final Consumer<Event> sink;
    private final Map<String, String> context;
    private final String appId;
    private final String attemptId;
    private final String sourceId;
    private final long intervalMs;
    private final LongSupplier clock;
    private final Map<String, QueryWindow> running = new HashMap<>();
    private final AtomicLong untracked = new AtomicLong();

    public StreamingQueries(Consumer<Event> sink, Map<String, String> context, String appId, String attemptId,
                            long intervalMs, LongSupplier clock) {
        this.sink = sink;
        this.context = context;
        this.appId = Json.cap(appId, 255);
        this.attemptId = Json.cap(attemptId, 64);
        this.sourceId = appId == null ? null : Ids.sparkAppId(this.appId, this.attemptId);
        this.intervalMs = intervalMs;
        this.clock = clock;
    }

    /** {@code workContext}: the task that started the query on a shared application (on each of its events). */
    synchronized void started(String queryId, String runId, String name, long startMillis,
                              Map<String, String> workContext) {
        if (running.containsKey(runId)) {
            return;
        }
        QueryWindow window = open(queryId, runId, name, startMillis);
        if (window != null) {
            window.workContext = workContext;
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("query_id", queryId);
            p.put("run_id", runId);
            p.put("name", Json.cap(name, 255));
            emit(START, window, startMillis, p);
        }
    }

    synchronized void progress(BatchProgress batch) {
        QueryWindow window = running.get(batch.runId);
        if (window == null) { // a listener added after the query started
            window = open(batch.queryId, batch.runId, batch.name, batch.endMillis - batch.durationMs);
            if (window == null) {
                return;
            }
        }
        window.add(batch);
        if (window.due(intervalMs)) {
            emit(PROGRESS, window, window.intervalEnd(), window.payload(window.intervalEnd()));
            window.nextInterval();
        }
    }

    synchronized void terminated(String queryId, String runId, String exception) {
        QueryWindow window = running.remove(runId);
        long now = clock.getAsLong();
        if (window == null) {
            window = new QueryWindow(queryId, runId, null, now);
        }
        Map<String, Object> p = window.payload(now);
        p.put("success", exception == null);
        p.put("error", error(exception));
        emit(END, window, now, p);
    }

    /** Queries not reported because MAX_QUERIES were running. */
    public long untracked() {
        return untracked.get();
    }

    synchronized int runningCount() {
        return running.size();
    }

    private QueryWindow open(String queryId, String runId, String name, long startMillis) {
        if (running.size() >= MAX_QUERIES) {
            untracked.incrementAndGet();
            return null;
        }
        QueryWindow window = new QueryWindow(queryId, runId, Json.cap(name, 255), startMillis);
        running.put(runId, window);
        return window;
    }

    private void emit(String type, QueryWindow window, long timeMillis, Map<String, Object> payload) {
        if (sourceId == null) {
            return; // a spark_* event needs its application
        }
        String id = Ids.eventId(sourceId, type, window.runId + "|" + window.sequence++);
        sink.accept(new Event(id, type, Json.formatEpochMillis(timeMillis), context, appId, attemptId, payload,
            window.workContext));
    }

    /** Spark hands the failure over as text: its first line is "Class: message", the rest the trace. */
    static Map<String, Object> error(String exception) {
        if (exception == null) {
            return null;
        }
        int newline = exception.indexOf('\n');
        String first = newline < 0 ? exception : exception.substring(0, newline);
        int colon = first.indexOf(": ");
        String type = colon > 0 && first.lastIndexOf(' ', colon - 1) < 0 ? first.substring(0, colon) : null;
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("type", Json.cap(type, 500));
        out.put("message", Json.cap(type == null ? first : first.substring(colon + 2), MAX_ERROR));
        out.put("traceback", Json.cap(exception, 262_144));
        return out;
    }
}
