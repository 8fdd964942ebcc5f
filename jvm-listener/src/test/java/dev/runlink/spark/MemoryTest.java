package dev.runlink.spark;

import static org.junit.Assert.assertTrue;

import dev.runlink.spark.delivery.Transport;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.Success$;
import org.apache.spark.TaskResultLost$;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.JobSucceeded$;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;
import org.junit.Test;

/**
 * The heap the listener keeps after 100,000 tasks, in the worst case: the tracker is down the whole time, and every
 * stage event queued holds its task distribution.
 */
public class MemoryTest {

    private static long usedAfterGc(MemoryMXBean memory) {
        for (int i = 0; i < 3; i++) {
            System.gc(); // best effort; several rounds settle the figure
        }
        return memory.getHeapMemoryUsage().getUsed();
    }

    @Test
    public void retainedHeapAfter100kTasksWithTheTrackerDown() throws Exception {
        Transport down = body -> {
            throw new IOException("Connection refused");
        };
        Agent agent = new Agent(TestSupport.settings("spark.runlink.maxBackoffMs", "10"), down);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "local-mem");
        RunlinkSparkListener listener = new RunlinkSparkListener(conf, Collections.<String, String>emptyMap(), agent);
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long before = usedAfterGc(memory);
        int stages = 2_000;
        int tasksPerStage = 50;
        Properties props = new Properties();
        TaskMetrics taskMetrics = TaskDistributionTest.metrics(123_456, 654_321, 4_321, 1 << 20, 12);
        for (int s = 0; s < stages; s++) {
            StageInfo info = SparkListenerTest.stage(s, 0, tasksPerStage, SparkListenerTest.metrics());
            listener.onJobStart(new SparkListenerJobStart(s, 0L, SparkListenerTest.seq(Collections.singletonList(info)),
                props));
            listener.onStageSubmitted(new SparkListenerStageSubmitted(info, props));
            for (int t = 0; t < tasksPerStage; t++) { // with their figures: every stage keeps a distribution
                listener.onTaskEnd(new SparkListenerTaskEnd(s, 0, "ResultTask",
                    t == 0 ? TaskResultLost$.MODULE$ : Success$.MODULE$,
                    TaskDistributionTest.task(t, 1_000, 1_000 + 7L * t * t, "exec-" + (t % 4), "host-" + (t % 4)),
                    null, taskMetrics));
            }
            listener.onStageCompleted(new SparkListenerStageCompleted(info));
            listener.onJobEnd(new SparkListenerJobEnd(s, 0L, JobSucceeded$.MODULE$));
        }
        TestSupport.await("the sender to have tried", 5_000, () -> agent.delivery.sendErrors() > 0);
        long retainedMb = (usedAfterGc(memory) - before) / (1024 * 1024);
        String figure = "figure: heap retained after " + stages * tasksPerStage + " tasks / " + stages
            + " stages with the tracker down: " + retainedMb + " MB (queue " + agent.delivery.queueSize()
            + ", pending " + agent.delivery.pending() + ", dropped " + agent.dropped() + ")";
        System.out.println(figure);
        assertTrue(figure, retainedMb <= 32);
        agent.delivery.close();
    }
}
