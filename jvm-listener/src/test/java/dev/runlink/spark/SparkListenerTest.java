package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.context.Ids;
import dev.runlink.spark.context.Settings;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.Success$;
import org.apache.spark.TaskEndReason;
import org.apache.spark.TaskResultLost$;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.JobFailed;
import org.apache.spark.scheduler.JobSucceeded$;
import org.apache.spark.scheduler.SparkListenerApplicationEnd;
import org.apache.spark.scheduler.SparkListenerApplicationStart;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;
import org.apache.spark.scheduler.cluster.ExecutorInfo;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import scala.Option;
import scala.collection.immutable.Seq;
import scala.jdk.javaapi.CollectionConverters;

/**
 * RunlinkSparkListener fed with Spark's own event objects (compiled against Spark 4 / Scala 2.13; the real
 * Spark 3.5 and 4 runs are in tests/jvm). The events it sends are written for tests/jvm's schema check.
 */
public class SparkListenerTest {
    static final String APP = "local-1763769600000";
    private TestSupport.RecordingTransport transport;
    private Agent agent;
    private RunlinkSparkListener listener;
    private int tasksEnded;

    @Before
    public void setUp() {
        transport = new TestSupport.RecordingTransport();
        Settings settings = TestSupport.settings("spark.runlink.batchIntervalMs", "0");
        agent = new Agent(settings, transport);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", APP);
        conf.put("spark.master", "local[2]");
        conf.put("spark.runlink.token", "secret-value");
        conf.put("spark.env.AIRFLOW_CTX_DAG_ID", "etl");
        conf.put("spark.env.AIRFLOW_CTX_EXECUTION_DATE", "2026-11-21");
        conf.put("spark.env.AIRFLOW_CTX_TASK_ID", "load");
        conf.put("spark.env.AIRFLOW_CTX_TRY_NUMBER", "1");
        listener = new RunlinkSparkListener(conf, Collections.<String, String>emptyMap(), agent);
    }

    @After
    public void tearDown() {
        agent.delivery.close();
    }

    static <T> Seq<T> seq(List<T> items) {
        return CollectionConverters.asScala(items).toSeq();
    }

    static StageInfo stage(int id, int attempt, int tasks, TaskMetrics metrics) {
        return new StageInfo(id, attempt, "stage " + id, tasks, seq(Collections.emptyList()),
            seq(Collections.emptyList()), "details", metrics, seq(Collections.emptyList()), Option.empty(), 0, false,
            0);
    }

    static TaskMetrics metrics() {
        TaskMetrics m = TaskMetrics.empty();
        m.setExecutorRunTime(1200);
        m.setExecutorCpuTime(900_000_000L);
        m.setJvmGCTime(15);
        m.setResultSize(4096);
        m.incMemoryBytesSpilled(10);
        m.incDiskBytesSpilled(20);
        m.inputMetrics().setBytesRead(1_000_000);
        m.inputMetrics().setRecordsRead(1000);
        return m;
    }

    private SparkListenerTaskEnd taskEnd(int stage, TaskEndReason reason) {
        if (reason instanceof Success$) { // a task's figures, for the stage's distribution
            int n = tasksEnded++;
            return new SparkListenerTaskEnd(stage, 0, "ResultTask", reason,
                TaskDistributionTest.task(n, 2_100, 2_200 + 300 * n, "1", "host-a"), null,
                TaskDistributionTest.metrics(1_000 * (n + 1), 0, 0, 0, 2));
        }
        return new SparkListenerTaskEnd(stage, 0, "ResultTask", reason, null, null, null);
    }

    /** A small application through every callback; returns the events the tracker received. */
    private List<JsonNode> runApplication() {
        listener.onApplicationStart(new SparkListenerApplicationStart("etl-app", Option.apply(APP), 1_000L, "alice",
            Option.<String>empty(), Option.empty(), Option.empty()));
        listener.onExecutorAdded(new SparkListenerExecutorAdded(1_100L, "1",
            new ExecutorInfo("host-a", 4, scala.collection.immutable.Map$.MODULE$.<String, String>empty())));
        StageInfo s0 = stage(0, 0, 3, metrics());
        StageInfo s1 = stage(1, 0, 2, null);
        Properties props = new Properties();
        props.setProperty("spark.jobGroup.id", "group-1");
        props.setProperty("spark.job.description", "a join");
        props.setProperty("spark.sql.execution.id", "7");
        props.setProperty("callSite.short", "collect at app.py:12");
        listener.onJobStart(new SparkListenerJobStart(3, 2_000L, seq(Arrays.asList(s0, s1)), props));
        listener.onStageSubmitted(new SparkListenerStageSubmitted(s0, props));
        for (int i = 0; i < 3; i++) {
            listener.onTaskEnd(taskEnd(0, Success$.MODULE$));
        }
        s0.submissionTime_$eq(Option.apply((Object) 2_100L));
        s0.completionTime_$eq(Option.apply((Object) 2_900L));
        listener.onStageCompleted(new SparkListenerStageCompleted(s0));
        listener.onStageSubmitted(new SparkListenerStageSubmitted(s1, props));
        listener.onTaskEnd(taskEnd(1, TaskResultLost$.MODULE$));
        listener.onTaskEnd(taskEnd(1, TaskResultLost$.MODULE$));
        listener.onTaskEnd(taskEnd(1, Success$.MODULE$));
        s1.failureReason_$eq(Option.apply("Job aborted due to stage failure"));
        listener.onStageCompleted(new SparkListenerStageCompleted(s1));
        listener.onTaskEnd(taskEnd(1, TaskResultLost$.MODULE$)); // late: its stage is gone, nothing is kept
        listener.onJobEnd(new SparkListenerJobEnd(3, 3_000L, new JobFailed(new RuntimeException("boom"))));
        listener.onJobStart(new SparkListenerJobStart(4, 3_100L, seq(Collections.<StageInfo>emptyList()), props));
        listener.onJobEnd(new SparkListenerJobEnd(4, 3_200L, JobSucceeded$.MODULE$));
        listener.onExecutorRemoved(new SparkListenerExecutorRemoved(3_500L, "1", "lost worker"));
        listener.onApplicationEnd(new SparkListenerApplicationEnd(4_000L, Option.apply((Object) 0)));
        return transport.events();
    }

    private static JsonNode only(List<JsonNode> events, String type) {
        JsonNode found = null;
        for (JsonNode e : events) {
            if (e.get("type").asText().equals(type)) {
                found = e;
            }
        }
        assertNotNull("an event " + type, found);
        return found;
    }

    @Test
    public void reportsTheApplicationItsJobsStagesAndExecutors() throws Exception {
        List<JsonNode> events = runApplication();
        for (JsonNode e : events) {
            assertEquals(APP, e.get("spark").get("app_id").asText());
            assertEquals("jvm", e.get("source").get("agent").asText());
            assertEquals("etl", e.get("context").get("dag_id").asText());
            assertEquals("2026-11-21", e.get("context").get("execution_date").asText());
        }
        JsonNode start = only(events, "spark_app.start").get("payload");
        assertEquals("etl-app", start.get("name").asText());
        assertEquals("alice", start.get("user").asText());
        assertEquals("local[2]", start.get("master").asText());
        assertEquals("client", start.get("deploy_mode").asText());
        assertEquals("1970-01-01T00:00:01.000000Z", start.get("start_time").asText());
        assertEquals("the token is masked", SparkConfs.MASK, start.get("conf").get("spark.runlink.token").asText());
        assertFalse(events.toString().contains("secret-value"));

        JsonNode jobStart = transport.events("spark_job.start").get(0).get("payload");
        assertEquals("[0,1]", jobStart.get("stage_ids").toString());
        assertEquals("group-1", jobStart.get("job_group").asText());
        assertEquals("a join", jobStart.get("description").asText());
        assertEquals(7, jobStart.get("sql_execution_id").asInt());
        assertEquals("app.py:12", jobStart.get("callsite").asText());

        List<JsonNode> stages = transport.events("spark_stage.completed");
        assertEquals(2, stages.size());
        JsonNode ok = stages.get(0).get("payload");
        assertEquals("succeeded", ok.get("status").asText());
        assertEquals(0, ok.get("failed_tasks").asInt());
        assertEquals("[3]", ok.get("job_ids").toString());
        assertEquals(1200, ok.get("metrics").get("executor_run_time_ms").asLong());
        assertEquals(900_000_000L, ok.get("metrics").get("executor_cpu_time_ns").asLong());
        assertEquals(1_000_000, ok.get("metrics").get("input_bytes").asLong());
        assertEquals(20, ok.get("metrics").get("disk_spilled_bytes").asLong());
        assertEquals("1970-01-01T00:00:02.900000Z", ok.get("completion_time").asText());
        assertEquals("app.py:12", ok.get("callsite").asText());
        JsonNode distribution = ok.get("distribution");
        assertEquals(3, distribution.get("tasks").asInt());
        assertEquals(100, distribution.get("metrics").get("duration_ms").get("min").asLong());
        assertEquals(700, distribution.get("metrics").get("duration_ms").get("max").asLong());
        assertEquals(3_000, distribution.get("metrics").get("input_bytes").get("max").asLong());
        assertEquals(1.75, distribution.get("skew").get("duration_ms").asDouble(), 0.06);
        assertEquals("host-a", distribution.get("slowest_task").get("host").asText());
        assertEquals("the id a re-send reproduces", Ids.eventId(Ids.sparkAppId(APP, null), "spark_stage.completed",
            "0.0"), stages.get(0).get("id").asText());
        JsonNode failed = stages.get(1).get("payload");
        assertEquals("failed", failed.get("status").asText());
        assertEquals(2, failed.get("failed_tasks").asInt());
        assertEquals("TaskResultLost (result lost from block manager)",
            failed.get("distribution").get("failed_task_reasons").get(0).get("reason").asText());
        assertEquals(2, failed.get("distribution").get("failed_task_reasons").get(0).get("count").asInt());
        assertEquals("Job aborted due to stage failure", failed.get("failure_reason").asText());

        JsonNode jobEnd = transport.events("spark_job.end").get(0);
        assertEquals("failed", jobEnd.get("payload").get("result").asText());
        assertTrue(jobEnd.get("payload").get("failure_reason").asText().contains("boom"));
        assertEquals(Ids.eventId(Ids.sparkAppId(APP, null), "spark_job.end", "3"), jobEnd.get("id").asText());
        assertEquals("succeeded", transport.events("spark_job.end").get(1).get("payload").get("result").asText());

        assertEquals(2, transport.events("spark_executor").size());
        JsonNode end = only(events, "spark_app.end").get("payload");
        assertEquals(0, end.get("exit_code").asInt());
        assertEquals("succeeded", end.get("state").asText());
        JsonNode health = only(events, "agent_health").get("payload");
        assertEquals(0, health.get("events_dropped").asInt());
        assertEquals("application end", health.get("reason").asText());
        EventSamples.add(events);
    }

    @Test
    public void aLinkageErrorDisablesTheListenerInsteadOfThrowing() {
        SparkListenerJobStart broken = new SparkListenerJobStart(1, 0L, seq(Collections.<StageInfo>emptyList()),
            new Properties()) {
            private static final long serialVersionUID = 1L;

            @Override
            public int jobId() {
                throw new NoSuchMethodError("scala.collection.Seq org.apache.spark...stageIds()");
            }
        };
        listener.onJobStart(broken); // must not throw
        assertTrue(listener.isDisabled());
        listener.onJobEnd(new SparkListenerJobEnd(1, 0L, JobSucceeded$.MODULE$));
        agent.delivery.flush(1_000);
        assertEquals("nothing is reported once disabled", 0, transport.events().size());
    }

    @Test
    public void otherErrorsAreSwallowedAndTheListenerGoesOn() {
        listener.onStageCompleted(new SparkListenerStageCompleted(null)); // NullPointerException inside
        assertFalse(listener.isDisabled());
        listener.onJobEnd(new SparkListenerJobEnd(1, 0L, JobSucceeded$.MODULE$));
        assertTrue(agent.delivery.flush(5_000));
        assertEquals(1, transport.events("spark_job.end").size());
    }

    /** CPU time of the listener thread per callback (wall time on a shared machine measures its neighbours). */
    @Test
    public void callbacksAreCheap() {
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        SparkListenerTaskEnd success = taskEnd(0, Success$.MODULE$);
        SparkListenerTaskEnd failure = taskEnd(0, TaskResultLost$.MODULE$);
        listener.onStageSubmitted(new SparkListenerStageSubmitted(stage(0, 0, 3, metrics()), new Properties()));
        int n = 200_000;
        for (int i = 0; i < n; i++) { // warm-up for the JIT
            listener.onTaskEnd(i % 10 == 0 ? failure : success);
        }
        long c0 = cpu.getCurrentThreadCpuTime();
        for (int i = 0; i < n; i++) {
            listener.onTaskEnd(success);
        }
        long successNs = (cpu.getCurrentThreadCpuTime() - c0) / n;
        c0 = cpu.getCurrentThreadCpuTime();
        for (int i = 0; i < n; i++) {
            listener.onTaskEnd(failure);
        }
        long failureNs = (cpu.getCurrentThreadCpuTime() - c0) / n;
        int stages = 4_000; // the first half warms up
        SparkListenerStageCompleted[] completed = new SparkListenerStageCompleted[stages];
        for (int i = 0; i < stages; i++) {
            completed[i] = new SparkListenerStageCompleted(stage(i, 0, 10, metrics()));
        }
        for (int i = 0; i < stages / 2; i++) {
            listener.onStageCompleted(completed[i]);
        }
        c0 = cpu.getCurrentThreadCpuTime();
        for (int i = stages / 2; i < stages; i++) {
            listener.onStageCompleted(completed[i]);
        }
        long stageNs = (cpu.getCurrentThreadCpuTime() - c0) / (stages / 2);
        String figures = "figure: listener-thread CPU per callback: onTaskEnd success " + successNs + " ns, failure "
            + failureNs + " ns; onStageCompleted (builds and queues an event) " + stageNs + " ns";
        System.out.println(figures);
        assertTrue(figures, successNs < 1_000 && failureNs < 5_000 && stageNs < 100_000);
    }
}
