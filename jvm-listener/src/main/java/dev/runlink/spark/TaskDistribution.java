package dev.runlink.spark;

import dev.runlink.spark.protocol.Json;
import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.TaskEndReason;
import org.apache.spark.TaskFailedReason;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.TaskInfo;

/**
 * One running stage's task distribution, fed by every task end on the listener thread: a {@link LogHistogram} per
 * metric over the successful tasks (as the Spark UI's summary metrics), the slowest task's executor and host, the
 * failed tasks' reasons with counts. Memory is bounded per stage whatever its task count: seven histograms (a few
 * KB), at most {@link #MAX_REASONS} reasons of at most {@link #MAX_REASON_CHARS} chars.
 *
 * <p>{@link #summary} freezes it into the optional {@code distribution} object of {@code spark_stage.completed}:
 * min, p50, p95 and max per metric (quantiles within {@link LogHistogram#RELATIVE_ERROR}), and skew = max / p50
 * (p50 counted as at least 1, so a stage whose median task read nothing and one task read much is flagged).
 */
final class TaskDistribution {
    static final String[] METRICS = {
        "duration_ms", "input_bytes", "shuffle_read_bytes", "shuffle_read_records", "memory_spilled_bytes",
        "disk_spilled_bytes", "jvm_gc_time_ms",
    };
    /** The metrics whose max / median says a stage's work was uneven. */
    static final int[] SKEWED = {0, 1, 2, 3};
    static final int MAX_REASONS = 8;
    static final int MAX_REASON_CHARS = 300;
    static final String OTHER = "(other reasons)";

    private final LogHistogram[] histograms = new LogHistogram[METRICS.length];
    private long slowestMs = -1;
    private long slowestTaskId;
    private String slowestExecutor;
    private String slowestHost;
    private Map<String, int[]> reasons;
    int failed;
    int killed;

    TaskDistribution() {
        for (int i = 0; i < histograms.length; i++) {
            histograms[i] = new LogHistogram();
        }
    }

    /** A successful task: its figures go into the histograms. Either argument may be null (then it counts less). */
    void succeeded(TaskInfo info, TaskMetrics m) {
        long duration = info == null || info.finishTime() <= 0 ? -1 : info.finishTime() - info.launchTime();
        if (duration >= 0) {
            histograms[0].add(duration);
            if (duration > slowestMs) {
                slowestMs = duration;
                slowestTaskId = info.taskId();
                slowestExecutor = info.executorId();
                slowestHost = info.host();
            }
        }
        if (m != null) {
            histograms[1].add(m.inputMetrics().bytesRead());
            histograms[2].add(m.shuffleReadMetrics().totalBytesRead());
            histograms[3].add(m.shuffleReadMetrics().recordsRead());
            histograms[4].add(m.memoryBytesSpilled());
            histograms[5].add(m.diskBytesSpilled());
            histograms[6].add(m.jvmGCTime());
        }
    }

    /** A task that did not succeed: counted as failed or killed (as Spark's status store does) and by reason. */
    void ended(TaskEndReason reason) {
        String name = reason == null ? "" : reason.getClass().getSimpleName();
        boolean wasKilled = name.equals("TaskKilled") || name.equals("TaskCommitDenied");
        if (wasKilled) {
            killed++;
        } else {
            failed++;
        }
        String text;
        if (reason instanceof ExceptionFailure) { // its error string is the whole stack trace: the exception only
            ExceptionFailure error = (ExceptionFailure) reason;
            text = firstLine(error.className() + ": " + error.description());
        } else if (reason instanceof TaskFailedReason) {
            text = firstLine(((TaskFailedReason) reason).toErrorString());
        } else {
            text = name;
        }
        if (reasons == null) {
            reasons = new LinkedHashMap<>();
        }
        int[] count = reasons.get(text);
        if (count == null) {
            if (reasons.size() >= MAX_REASONS) {
                text = OTHER; // the ninth entry, for every further reason
                count = reasons.get(OTHER);
            }
            if (count == null) {
                count = new int[1];
                reasons.put(text, count);
            }
        }
        count[0]++;
    }

    private static String firstLine(String text) {
        if (text == null) {
            return "";
        }
        int newline = text.indexOf('\n');
        String line = newline < 0 ? text : text.substring(0, newline);
        return line.length() <= MAX_REASON_CHARS ? line : line.substring(0, MAX_REASON_CHARS);
    }

    long tasks() {
        return histograms[0].count();
    }

    /** The stage's distribution for the wire, or null when no task succeeded (nothing to describe). */
    Map<String, Object> summary() {
        long measured = Math.max(histograms[0].count(), histograms[1].count());
        if (measured == 0 && reasons == null) {
            return null;
        }
        long[] figures = new long[METRICS.length * 4];
        for (int i = 0; i < METRICS.length; i++) {
            LogHistogram h = histograms[i];
            figures[i * 4] = h.count() == 0 ? -1 : h.min();
            figures[i * 4 + 1] = h.quantile(0.5);
            figures[i * 4 + 2] = h.quantile(0.95);
            figures[i * 4 + 3] = h.max();
        }
        List<Object[]> failures = new ArrayList<>();
        if (reasons != null) {
            for (Map.Entry<String, int[]> e : reasons.entrySet()) {
                failures.add(new Object[] {e.getKey(), e.getValue()[0]});
            }
        }
        return new Summary(measured, figures, slowestMs, slowestTaskId, slowestExecutor, slowestHost, failures);
    }

    /**
     * The frozen distribution as a read-only Map: ~40 numbers in arrays while the event waits in the bounded queue
     * (as {@link StageMetrics}, for the queue's worst case); the nested maps are made only when the sender
     * serializes.
     */
    static final class Summary extends AbstractMap<String, Object> {
        private final long tasks;
        private final long[] figures;
        private final long slowestMs;
        private final long slowestTaskId;
        private final String slowestExecutor;
        private final String slowestHost;
        private final List<Object[]> failures;

        Summary(long tasks, long[] figures, long slowestMs, long slowestTaskId, String slowestExecutor,
                String slowestHost, List<Object[]> failures) {
            this.tasks = tasks;
            this.figures = figures;
            this.slowestMs = slowestMs;
            this.slowestTaskId = slowestTaskId;
            this.slowestExecutor = slowestExecutor;
            this.slowestHost = slowestHost;
            this.failures = failures;
        }

        /** max / max(p50, 1) of metric {@code i}, rounded to 2 places; null when no task measured it. */
        Double skew(int i) {
            if (figures[i * 4] < 0) {
                return null;
            }
            double ratio = (double) figures[i * 4 + 3] / Math.max(1, figures[i * 4 + 1]);
            return Math.round(ratio * 100) / 100.0;
        }

        private Map<String, Object> expand() {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tasks", tasks);
            out.put("relative_error", LogHistogram.RELATIVE_ERROR);
            Map<String, Object> metrics = new LinkedHashMap<>();
            for (int i = 0; i < METRICS.length; i++) {
                if (figures[i * 4] < 0) {
                    continue;
                }
                Map<String, Object> q = new LinkedHashMap<>();
                q.put("min", figures[i * 4]);
                q.put("p50", figures[i * 4 + 1]);
                q.put("p95", figures[i * 4 + 2]);
                q.put("max", figures[i * 4 + 3]);
                metrics.put(METRICS[i], q);
            }
            out.put("metrics", metrics);
            Map<String, Object> skew = new LinkedHashMap<>();
            for (int i : SKEWED) {
                Double value = skew(i);
                if (value != null) {
                    skew.put(METRICS[i], value);
                }
            }
            out.put("skew", skew);
            if (slowestMs >= 0) {
                Map<String, Object> slowest = new LinkedHashMap<>();
                slowest.put("task_id", slowestTaskId);
                slowest.put("duration_ms", slowestMs);
                slowest.put("executor_id", Json.cap(slowestExecutor, 255));
                slowest.put("host", Json.cap(slowestHost, 255));
                out.put("slowest_task", slowest);
            }
            List<Map<String, Object>> reasons = new ArrayList<>(failures.size());
            for (Object[] f : failures) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("reason", f[0]);
                r.put("count", f[1]);
                reasons.add(r);
            }
            out.put("failed_task_reasons", reasons);
            return out;
        }

        @Override
        public Set<Map.Entry<String, Object>> entrySet() {
            return expand().entrySet();
        }
    }
}
