package dev.runlink.spark.streaming;

import dev.runlink.spark.protocol.Json;
import java.time.Instant;
import java.util.Map;
import org.apache.spark.sql.streaming.SourceProgress;
import org.apache.spark.sql.streaming.StateOperatorProgress;
import org.apache.spark.sql.streaming.StreamingQueryProgress;

/**
 * What runlink reads from one of Spark's progress reports: a handful of numbers and short strings, copied out so
 * that nothing of Spark's (its maps, arrays and per-source objects) outlives the callback. Source and sink
 * descriptions are read lazily: a query keeps them from its first batch only.
 */
final class BatchProgress {
    static final int MAX_SOURCES = 10;
    static final int MAX_DESCRIPTION = 1024;

    final String queryId;
    final String runId;
    final String name;
    final long batchId;
    /** When the batch ended: its trigger time plus its duration (Spark's clock, epoch millis). */
    final long endMillis;
    final long durationMs;
    final long inputRows;
    final String watermark;
    /** Rows held by the state operators after this batch; null for a stateless query. */
    final Long stateRows;
    private final StreamingQueryProgress progress;

    BatchProgress(String queryId, String runId, String name, long batchId, long endMillis, long durationMs,
                  long inputRows, String watermark, Long stateRows) {
        this(queryId, runId, name, batchId, endMillis, durationMs, inputRows, watermark, stateRows, null);
    }

    private BatchProgress(String queryId, String runId, String name, long batchId, long endMillis, long durationMs,
                          long inputRows, String watermark, Long stateRows, StreamingQueryProgress progress) {
        this.queryId = queryId;
        this.runId = runId;
        this.name = name;
        this.batchId = batchId;
        this.endMillis = endMillis;
        this.durationMs = durationMs;
        this.inputRows = inputRows;
        this.watermark = watermark;
        this.stateRows = stateRows;
        this.progress = progress;
    }

    static BatchProgress of(StreamingQueryProgress p) {
        long duration = Math.max(0, p.batchDuration());
        long start = parseMillis(p.timestamp());
        Map<String, String> eventTime = p.eventTime();
        String watermark = eventTime == null ? null : Json.cap(eventTime.get("watermark"), 64);
        Long stateRows = null;
        StateOperatorProgress[] operators = p.stateOperators();
        if (operators != null && operators.length > 0) {
            long rows = 0;
            for (StateOperatorProgress operator : operators) {
                rows += operator.numRowsTotal();
            }
            stateRows = rows;
        }
        return new BatchProgress(String.valueOf(p.id()), String.valueOf(p.runId()), Json.cap(p.name(), 255),
            p.batchId(), start + duration, duration, Math.max(0, p.numInputRows()), watermark, stateRows, p);
    }

    /** Up to MAX_SOURCES descriptions, each capped; empty when not read from Spark. */
    String[] sources() {
        SourceProgress[] sources = progress == null ? null : progress.sources();
        if (sources == null) {
            return new String[0];
        }
        String[] out = new String[Math.min(sources.length, MAX_SOURCES)];
        for (int i = 0; i < out.length; i++) {
            out[i] = Json.cap(sources[i].description(), MAX_DESCRIPTION);
        }
        return out;
    }

    String sink() {
        return progress == null || progress.sink() == null ? null
            : Json.cap(progress.sink().description(), MAX_DESCRIPTION);
    }

    /** Spark's ISO-8601 timestamps ("2026-12-03T12:00:00.000Z"); now when absent or unreadable. */
    static long parseMillis(String timestamp) {
        if (timestamp != null) {
            try {
                return Instant.parse(timestamp).toEpochMilli();
            } catch (RuntimeException e) {
                // an unexpected spelling: fall back to the wall clock
            }
        }
        return System.currentTimeMillis();
    }
}
