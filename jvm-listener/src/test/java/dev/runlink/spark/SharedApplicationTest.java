package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.context.WorkContext;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.scheduler.JobSucceeded$;
import org.apache.spark.scheduler.SparkListenerApplicationStart;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.StageInfo;
import org.apache.spark.sql.execution.SparkPlanInfo;
import org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;
import scala.Option;
import scala.collection.immutable.Map$;
import scala.collection.immutable.Set$;
import scala.jdk.javaapi.CollectionConverters;

/**
 * An application started with no Airflow context (a Spark Connect server, a shared cluster) and used by two tasks:
 * each job, its stages and its SQL execution carry the context its properties name, as {@code work_context}.
 */
public class SharedApplicationTest {
    static final String APP = "local-shared-1";
    static final String TASK_A = "dag_id=etl&dag_run_id=manual__1&task_id=extract&try_number=1";
    static final String TASK_B = "dag_id=etl&dag_run_id=manual__1&task_id=load&try_number=1";
    private TestSupport.RecordingTransport transport;
    private Agent agent;
    private RunlinkSparkListener listener;

    @Before
    public void setUp() {
        transport = new TestSupport.RecordingTransport();
        Settings settings = TestSupport.settings("spark.runlink.batchIntervalMs", "0");
        agent = new Agent(settings, transport);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", APP);
        listener = new RunlinkSparkListener(conf, Collections.<String, String>emptyMap(), agent);
        listener.onApplicationStart(new SparkListenerApplicationStart("connect-server", Option.apply(APP), 1_000L,
            "spark", Option.<String>empty(), Option.empty(), Option.empty()));
    }

    @After
    public void tearDown() {
        agent.delivery.close();
    }

    private static Properties props(String context, Long executionId) {
        Properties props = new Properties();
        if (context != null) {
            props.setProperty(WorkContext.PROPERTY, context);
        }
        if (executionId != null) {
            props.setProperty("spark.sql.execution.id", executionId.toString());
        }
        return props;
    }

    private void job(int jobId, int stageId, Properties props) {
        StageInfo stage = SparkListenerTest.stage(stageId, 0, 1, SparkListenerTest.metrics());
        listener.onJobStart(new SparkListenerJobStart(jobId, 2_000L, SparkListenerTest.seq(Arrays.asList(stage)),
            props));
        listener.onStageSubmitted(new SparkListenerStageSubmitted(stage, props));
        listener.onStageCompleted(new SparkListenerStageCompleted(stage));
        listener.onJobEnd(new SparkListenerJobEnd(jobId, 3_000L, JobSucceeded$.MODULE$));
    }

    private List<JsonNode> flushed() {
        assertTrue(agent.delivery.flush(5_000));
        return transport.events();
    }

    private static String task(JsonNode event) {
        JsonNode work = event.get("work_context");
        return work == null ? null : work.get("task_id").asText();
    }

    @Test
    public void eachJobAndItsStagesCarryTheContextOfTheTaskThatRanIt() {
        job(1, 1, props(TASK_A, null));
        job(2, 2, props(TASK_B, null));
        job(3, 3, props(null, null)); // the server's own work (or a client without runlink)
        for (JsonNode e : flushed()) {
            assertNull("the application has no context of its own", e.get("context"));
            String type = e.get("type").asText();
            if (type.startsWith("spark_job") || type.startsWith("spark_stage")) {
                int job = type.startsWith("spark_job") ? e.get("payload").get("job_id").asInt()
                    : e.get("payload").get("job_ids").get(0).asInt();
                assertEquals(type + " of job " + job, job == 1 ? "extract" : job == 2 ? "load" : null, task(e));
            } else {
                assertNull(type, e.get("work_context"));
            }
        }
        JsonNode work = transport.events("spark_job.start").get(0).get("work_context");
        assertEquals("etl", work.get("dag_id").asText());
        assertEquals("manual__1", work.get("dag_run_id").asText());
        assertEquals("1", work.get("try_number").asText());
        assertEquals("cleaned at job end", 0, listener.jobContextsHeld());
        EventSamples.add(transport.events("spark_job.start"));
        EventSamples.add(transport.events("spark_stage.completed"));
        EventSamples.add(transport.events("spark_job.end"));
    }

    @Test
    public void memoryStaysBoundedWhenJobEndsAreLost() {
        Properties props = props(TASK_A, null);
        for (int i = 0; i < JobContexts.MAX + 500; i++) {
            listener.onJobStart(new SparkListenerJobStart(i, 2_000L,
                SparkListenerTest.seq(Collections.<StageInfo>emptyList()), props));
        }
        assertEquals(JobContexts.MAX, listener.jobContextsHeld());
    }

    @Test
    public void aQueryCarriesTheContextOfItsExecutionsJobs() {
        Object qe = new Object();
        Executions.started(501L, "collect at <connect>", "", null);
        job(7, 7, props(TASK_B, 501L));
        Executions.ended(qe, 501L);
        assertEquals("load", Executions.take(qe).context.get("task_id"));
    }

    @Test
    public void aQueryCarriesTheContextItsSessionPropagated() {
        // Spark Connect: the session conf is listed in the execution start's modifiedConfigs, even for a query
        // that runs no job (a command)
        Map<String, String> modified = new HashMap<>();
        modified.put(WorkContext.PROPERTY, TASK_A);
        modified.put("spark.sql.shuffle.partitions", "4");
        scala.collection.immutable.Map<String, String> confs = Map$.MODULE$.from(CollectionConverters.asScala(modified));
        SparkPlanInfo plan = new SparkPlanInfo("LocalTableScan", "LocalTableScan",
            SparkListenerTest.seq(Collections.<SparkPlanInfo>emptyList()), Map$.MODULE$.<String, String>empty(),
            SparkListenerTest.seq(Collections.emptyList()));
        listener.onOtherEvent(new SparkListenerSQLExecutionStart(502L, Option.empty(), "createOrReplace", "", "",
            plan, 2_000L, confs, Set$.MODULE$.<String>empty(), Option.<String>empty(), Option.empty()));
        Object qe = new Object();
        Executions.ended(qe, 502L);
        Executions.Execution execution = Executions.take(qe);
        assertEquals("extract", execution.context.get("task_id"));
        assertFalse(execution.context.containsKey("spark.sql.shuffle.partitions"));
    }

    @Test
    public void theSqlQueryEventCarriesTheExecutionsContext() {
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", APP);
        RunlinkQueryListener queries = new RunlinkQueryListener(conf, Collections.<String, String>emptyMap(), agent);
        Map<String, String> ctx = WorkContext.parse(TASK_B);
        queries.report("collect", new Object(), new Executions.Execution(9L, null, null, ctx, null), 1.0, null,
            dev.runlink.spark.protocol.Json.now());
        flushed();
        JsonNode query = transport.events("sql_query").get(0);
        assertEquals("load", task(query));
        assertNull(query.get("context"));
        EventSamples.add(transport.events("sql_query"));
    }
}
