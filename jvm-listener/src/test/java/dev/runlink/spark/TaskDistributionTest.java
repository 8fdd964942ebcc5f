package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.ExceptionFailure;
import org.apache.spark.TaskKilled;
import org.apache.spark.TaskResultLost$;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.TaskInfo;
import org.apache.spark.scheduler.TaskLocality;
import org.junit.Test;

public class TaskDistributionTest {

    @Test
    public void bucketsAreContiguousAndEachHoldsItsValues() {
        for (int i = 0; i < LogHistogram.MAX_BUCKETS - 1; i++) {
            long lower = LogHistogram.lower(i);
            assertEquals("bucket " + i, i, LogHistogram.index(lower));
            assertEquals("bucket " + i + " ends where the next starts", LogHistogram.lower(i + 1),
                lower + LogHistogram.width(i));
            assertEquals(i, LogHistogram.index(lower + LogHistogram.width(i) - 1));
            assertTrue("width <= lower / 16", i < LogHistogram.SUB || LogHistogram.width(i) * 16 <= lower);
        }
        assertEquals(LogHistogram.MAX_BUCKETS - 1, LogHistogram.index(Long.MAX_VALUE));
    }

    /** Quantiles within the stated bound of the exact nearest-rank value, on shapes that matter: skew, spread. */
    @Test
    public void quantilesAreWithinTheRelativeErrorBound() {
        Random random = new Random(17);
        List<long[]> shapes = new ArrayList<>();
        long[] uniform = new long[10_000];
        long[] logNormal = new long[10_000];
        long[] hotKey = new long[200];
        for (int i = 0; i < uniform.length; i++) {
            uniform[i] = random.nextInt(100_000);
            logNormal[i] = (long) Math.exp(8 + 3 * random.nextGaussian());
        }
        for (int i = 0; i < hotKey.length; i++) {
            hotKey[i] = i == 7 ? 50_000_000L : 1_000 + random.nextInt(100);
        }
        shapes.add(uniform);
        shapes.add(logNormal);
        shapes.add(hotKey);
        shapes.add(new long[] {3});
        for (long[] values : shapes) {
            LogHistogram h = new LogHistogram();
            for (long v : values) {
                h.add(v);
            }
            long[] sorted = values.clone();
            Arrays.sort(sorted);
            assertEquals(sorted[0], h.min());
            assertEquals(sorted[sorted.length - 1], h.max());
            for (double q : new double[] {0.5, 0.95, 0.99, 1.0}) {
                long exact = sorted[(int) Math.max(0, Math.ceil(q * sorted.length) - 1)];
                long got = h.quantile(q);
                assertTrue("q" + q + ": " + got + " vs " + exact,
                    Math.abs(got - exact) <= LogHistogram.RELATIVE_ERROR * exact + 0.5);
            }
            assertTrue(h.buckets() <= LogHistogram.MAX_BUCKETS);
        }
    }

    @Test
    public void memoryDoesNotGrowWithTheTaskCount() {
        LogHistogram h = new LogHistogram();
        for (int i = 0; i < 1_000_000; i++) {
            h.add(i % 5_000);
        }
        int buckets = h.buckets();
        for (int i = 0; i < 1_000_000; i++) {
            h.add(i % 5_000);
        }
        assertEquals(buckets, h.buckets());
        assertEquals(2_000_000, h.count());
    }

    static TaskInfo task(long id, long launch, long finish, String executor, String host) {
        TaskInfo info = new TaskInfo(id, (int) id, 0, (int) id, launch, executor, host, TaskLocality.PROCESS_LOCAL(),
            false);
        info.finishTime_$eq(finish);
        return info;
    }

    static TaskMetrics metrics(long inputBytes, long shuffleBytes, long shuffleRecords, long spilled, long gc) {
        TaskMetrics m = TaskMetrics.empty();
        m.inputMetrics().setBytesRead(inputBytes);
        m.createTempShuffleReadMetrics().incRemoteBytesRead(shuffleBytes);
        m.createTempShuffleReadMetrics().incRecordsRead(shuffleRecords);
        m.mergeShuffleReadMetrics();
        m.incMemoryBytesSpilled(spilled);
        m.incDiskBytesSpilled(spilled / 2);
        m.setJvmGCTime(gc);
        return m;
    }

    @SuppressWarnings("unchecked")
    @Test
    public void aStageWithAHotKeyAndFailures() {
        TaskDistribution stage = new TaskDistribution();
        for (int i = 0; i < 99; i++) {
            stage.succeeded(task(i, 1_000, 1_100 + i % 5, "1", "host-a"), metrics(0, 1_000, 10, 0, 1));
        }
        stage.succeeded(task(99, 1_000, 9_000, "2", "host-b"), metrics(0, 800_000, 8_000, 64 << 20, 300));
        for (int i = 0; i < 12; i++) {
            stage.ended(new ExceptionFailure("java.lang.IllegalStateException", "bad row " + i,
                new StackTraceElement[0], "trace", scala.Option.empty(), SparkListenerTest.seq(Collections.emptyList()),
                SparkListenerTest.seq(Collections.emptyList()), SparkListenerTest.seq(Collections.emptyList())));
        }
        stage.ended(TaskResultLost$.MODULE$);
        stage.ended(new TaskKilled("another attempt succeeded", SparkListenerTest.seq(Collections.emptyList()),
            SparkListenerTest.seq(Collections.emptyList()), SparkListenerTest.seq(Collections.emptyList())));
        assertEquals(13, stage.failed);
        assertEquals(1, stage.killed);

        Map<String, Object> summary = stage.summary();
        assertEquals(100L, summary.get("tasks"));
        Map<String, Object> metrics = (Map<String, Object>) summary.get("metrics");
        Map<String, Object> duration = (Map<String, Object>) metrics.get("duration_ms");
        assertEquals(100L, duration.get("min"));
        assertEquals(8_000L, duration.get("max"));
        assertTrue(Math.abs((Long) duration.get("p50") - 102) <= 4);
        Map<String, Object> spill = (Map<String, Object>) metrics.get("memory_spilled_bytes");
        assertEquals(0L, spill.get("p50"));
        assertEquals(64L << 20, spill.get("max"));
        Map<String, Object> skew = (Map<String, Object>) summary.get("skew");
        assertTrue("duration skew " + skew, (Double) skew.get("duration_ms") > 70);
        assertTrue("shuffle skew " + skew, (Double) skew.get("shuffle_read_bytes") > 700);
        Map<String, Object> slowest = (Map<String, Object>) summary.get("slowest_task");
        assertEquals("2", slowest.get("executor_id"));
        assertEquals("host-b", slowest.get("host"));
        assertEquals(99L, slowest.get("task_id"));
        List<Map<String, Object>> reasons = (List<Map<String, Object>>) summary.get("failed_task_reasons");
        assertEquals("8 reasons, then one entry for the rest", 9, reasons.size());
        assertEquals("java.lang.IllegalStateException: bad row 0", reasons.get(0).get("reason"));
        assertEquals(TaskDistribution.OTHER, reasons.get(8).get("reason"));
        int counted = 0;
        for (Map<String, Object> r : reasons) {
            counted += (Integer) r.get("count");
        }
        assertEquals(14, counted);
    }

    @Test
    public void aStageWithNoTaskEndsHasNoDistribution() {
        assertNull(new TaskDistribution().summary());
    }
}
