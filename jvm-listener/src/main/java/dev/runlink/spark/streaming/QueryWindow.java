package dev.runlink.spark.streaming;

import dev.runlink.spark.protocol.Json;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One running query's figures: its totals since it started and the aggregate of the current interval. The shape is
 * fixed on purpose: a batch is folded into counts, sums, min/max and latest values, never kept, so a query that
 * runs for days holds the same few dozen fields as one that ran a minute. Not thread-safe: StreamingQueries
 * guards it.
 */
final class QueryWindow {
    final String queryId;
    final String runId;
    private String name;
    private String[] sources;
    private String sink;

    private long totalBatches;
    private long totalInputRows;
    private long totalBatchMs;
    private long maxBatchMs;
    private long latestBatchId = -1;
    private String watermark;
    private Long stateRows;

    private long intervalStart;
    private long intervalEnd;
    private long batches;
    private long inputRows;
    private long batchMsSum;
    private long batchMsMin;
    private long batchMsMax;
    /** Events emitted for this run so far: the discriminator of the next one's id. */
    int sequence;
    /** The context of the task that started the query on a shared application, null for the application's own. */
    Map<String, String> workContext;

    QueryWindow(String queryId, String runId, String name, long startMillis) {
        this.queryId = queryId;
        this.runId = runId;
        this.name = name;
        this.intervalStart = startMillis;
        this.intervalEnd = startMillis;
    }

    /**
     * Folds one batch in. False for a report of a batch already counted: Spark before 3.5 repeats the last batch id
     * in the progress it posts while a query waits for data.
     */
    boolean add(BatchProgress batch) {
        if (batch.name != null) {
            name = batch.name;
        }
        if (sources == null) {
            sources = batch.sources();
            sink = batch.sink();
        }
        intervalEnd = Math.max(intervalEnd, batch.endMillis);
        if (batch.watermark != null) {
            watermark = batch.watermark;
        }
        if (batch.stateRows != null) {
            stateRows = batch.stateRows;
        }
        if (batch.batchId <= latestBatchId) {
            return false;
        }
        latestBatchId = batch.batchId;
        totalBatches++;
        totalInputRows += batch.inputRows;
        totalBatchMs += batch.durationMs;
        maxBatchMs = Math.max(maxBatchMs, batch.durationMs);
        batchMsMin = batches == 0 ? batch.durationMs : Math.min(batchMsMin, batch.durationMs);
        batchMsMax = Math.max(batchMsMax, batch.durationMs);
        batches++;
        inputRows += batch.inputRows;
        batchMsSum += batch.durationMs;
        return true;
    }

    /** The current interval holds batches and spans at least {@code intervalMs}. */
    boolean due(long intervalMs) {
        return batches > 0 && intervalEnd - intervalStart >= intervalMs;
    }

    long intervalEnd() {
        return intervalEnd;
    }

    /** The next interval starts where this one ended. */
    void nextInterval() {
        intervalStart = intervalEnd;
        batches = 0;
        inputRows = 0;
        batchMsSum = 0;
        batchMsMin = 0;
        batchMsMax = 0;
    }

    /** The interval's aggregate and the run's totals, under the schema's payload.spark_streaming_query names. */
    Map<String, Object> payload(long endMillis) {
        intervalEnd = Math.max(intervalEnd, endMillis);
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("query_id", queryId);
        p.put("run_id", runId);
        p.put("name", name);
        p.put("interval_start", Json.formatEpochMillis(intervalStart));
        p.put("interval_end", Json.formatEpochMillis(intervalEnd));
        p.put("batches", batches);
        p.put("input_rows", inputRows);
        double seconds = (intervalEnd - intervalStart) / 1000.0;
        p.put("input_rows_per_s", seconds > 0 ? inputRows / seconds : null);
        p.put("processed_rows_per_s", batchMsSum > 0 ? inputRows * 1000.0 / batchMsSum : null);
        p.put("batch_ms_min", batches > 0 ? batchMsMin : null);
        p.put("batch_ms_max", batches > 0 ? batchMsMax : null);
        p.put("batch_ms_sum", batchMsSum);
        p.put("total_batches", totalBatches);
        p.put("total_input_rows", totalInputRows);
        p.put("total_batch_ms", totalBatchMs);
        p.put("max_batch_ms", totalBatches > 0 ? maxBatchMs : null);
        p.put("latest_batch_id", latestBatchId >= 0 ? latestBatchId : null);
        p.put("watermark", watermark);
        p.put("state_rows", stateRows);
        p.put("sources", sources == null ? null : Arrays.asList(sources));
        p.put("sink", sink);
        return p;
    }
}
