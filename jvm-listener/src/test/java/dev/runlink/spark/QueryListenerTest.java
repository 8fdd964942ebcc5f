package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.plan.FakePlans;
import dev.runlink.spark.protocol.Json;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

/** RunlinkQueryListener's reports, and PlanInspector on the plan shapes of Spark 3.5/4.x (see FakePlans). */
public class QueryListenerTest {
    private TestSupport.RecordingTransport transport;
    private Agent agent;
    private RunlinkQueryListener listener;
    /** The thread the late-end test's "Spark listener" waits on. */
    private volatile Thread worker;

    @Before
    public void setUp() {
        transport = new TestSupport.RecordingTransport();
        agent = new Agent(TestSupport.settings("spark.runlink.batchIntervalMs", "0"), transport);
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "local-1");
        conf.put("spark.env.AIRFLOW_CTX_DAG_ID", "etl");
        listener = new RunlinkQueryListener(conf, Collections.<String, String>emptyMap(), agent);
    }

    @After
    public void tearDown() {
        agent.delivery.close();
    }

    private List<JsonNode> report(String action, Object qe, Double durationMs, Exception error) {
        return report(action, qe, new Executions.Execution(12L, "save at /jobs/etl.py:7", "/jobs/etl.py:7 in main", null, null),
            durationMs, error);
    }

    private List<JsonNode> report(String action, Object qe, Executions.Execution execution, Double durationMs,
                                  Exception error) {
        listener.report(action, qe, execution, durationMs, error, Json.now());
        assertTrue(agent.delivery.flush(5_000));
        return transport.events("sql_query");
    }

    @Test
    public void v1WriteWithInputsRowsAndSchema() {
        JsonNode p = report("save", FakePlans.v1Write(), 250.5, null).get(0).get("payload");
        assertEquals("save", p.get("action").asText());
        assertEquals(12, p.get("execution_id").asInt());
        assertEquals(250.5, p.get("duration_ms").asDouble(), 0.0);
        assertTrue(p.get("success").asBoolean());
        assertEquals("jvm", p.get("listener").asText());
        assertEquals("/jobs/etl.py:7 main", p.get("callsite").asText());
        JsonNode in = p.get("inputs");
        assertEquals("one source, scanned twice: rows add up", 1, in.size());
        assertEquals("file:/data/a", in.get(0).get("path").asText());
        assertEquals("parquet", in.get(0).get("format").asText());
        assertEquals("read", in.get(0).get("operation").asText());
        assertEquals(150, in.get(0).get("rows").asLong());
        assertEquals(4, in.get(0).get("files").asLong());
        assertEquals(3, in.get(0).get("schema").size());
        JsonNode out = p.get("outputs").get(0);
        assertEquals("write", out.get("operation").asText());
        assertEquals("file:/data/out", out.get("path").asText());
        assertEquals("Overwrite", out.get("mode").asText());
        assertEquals(42, out.get("rows").asLong());
        assertEquals(1234, out.get("bytes").asLong());
        assertEquals(1, out.get("files").asLong());
        assertEquals("c0", out.get("schema").get(0).get("name").asText());
        assertEquals("bigint", out.get("schema").get(0).get("type").asText());
        assertTrue(p.get("plan_summary").asText().contains("SortMergeJoinExec"));
        assertFalse(p.get("plan_truncated").asBoolean());
    }

    @Test
    public void dataSourceV2AppendNamesItsTableAndRows() {
        List<JsonNode> events = report("append", FakePlans.v2Append(), 5.0, null);
        JsonNode out = events.get(0).get("payload").get("outputs").get(0);
        assertEquals("lake.db.events", out.get("table").asText());
        assertEquals("iceberg", out.get("format").asText());
        assertEquals("Append", out.get("mode").asText());
        assertEquals(7, out.get("rows").asLong());
        assertEquals("file:/data/in", events.get(0).get("payload").get("inputs").get(0).get("path").asText());
    }

    @Test
    public void failureCarriesTheErrorAndTheLogicalInputs() {
        Exception error = new IllegalArgumentException("[UNRESOLVED_COLUMN] x");
        JsonNode p = report("collect", FakePlans.failedBeforePlanning(), null, error).get(0).get("payload");
        assertFalse(p.get("success").asBoolean());
        assertTrue(p.get("duration_ms").isNull());
        assertEquals("java.lang.IllegalArgumentException", p.get("error").get("type").asText());
        assertEquals("[UNRESOLVED_COLUMN] x", p.get("error").get("message").asText());
        assertTrue(p.get("error").get("traceback").asText().contains("QueryListenerTest"));
        assertEquals("lake.db.events", p.get("inputs").get(0).get("table").asText());
    }

    /** The schema cap is PlanInspectorTest's. */
    @Test
    public void capsThePlanSummary() {
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "local-1");
        conf.put("spark.runlink.maxPlanChars", "10");
        listener = new RunlinkQueryListener(conf, Collections.<String, String>emptyMap(), agent);
        JsonNode p = report("save", FakePlans.v1Write(), 1.0, null).get(0).get("payload");
        assertEquals(10, p.get("plan_summary").asText().length());
        assertTrue(p.get("plan_truncated").asBoolean());
    }

    @Test
    public void anUnknownQueryExecutionShapeReportsWhatItCan() {
        JsonNode p = report("collect", new Object(), 1.0, null).get(0).get("payload");
        assertEquals(0, p.get("inputs").size());
        assertEquals(0, p.get("outputs").size());
        assertNull(p.get("plan_summary").textValue());
        EventSamples.add(transport.events());
    }

    @Test
    public void callSiteOfTheExecution() {
        // the forms of a call site: CallSitesTest
        // without its execution (the query listener alone, or an execution end it never saw)
        JsonNode p = report("collect", FakePlans.v1Write(), null, 1.0, null).get(0).get("payload");
        assertTrue(p.get("callsite").isNull() && p.get("execution_id").isNull());
    }

    @Test
    public void executionStartAndEndPairWithTheQueryExecution() {
        Object qe = new Object();
        Executions.started(77L, "toPandas at /nb/report.py:3", "/nb/report.py:3 in <module>", null);
        Executions.ended(qe, 77L);
        Executions.Execution execution = Executions.take(qe);
        assertEquals(77L, execution.id);
        assertEquals("/nb/report.py:3 <module>", execution.callsite());
        assertNull("taken once", Executions.take(qe));
        Object unseen = new Object();
        Executions.ended(unseen, 78L); // its start was not seen: the id still pairs, without a call site
        Executions.Execution bare = Executions.take(unseen);
        assertEquals(78L, bare.id);
        assertNull(bare.callsite());
    }

    @Test
    public void anExecutionEndSeenJustAfterTheQueryListenerIsWaitedFor() throws Exception {
        // track_session on a running session: the query listener hears of the execution before the Spark
        // listener records its end, so the worker finds nothing at first and waits for it
        final Object qe = FakePlans.v1Write();
        Executions.started(91L, "save at /dags/late.py:5", "/dags/late.py:5 in main", null);
        Thread sparkListener = new Thread(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                if (worker != null && worker.getState() == Thread.State.TIMED_WAITING) {
                    Executions.ended(qe, 91L);
                    return;
                }
                Thread.yield();
            }
        });
        worker = Thread.currentThread();
        sparkListener.start();
        try {
            JsonNode p = report("save", qe, null, 3.0, null).get(0).get("payload");
            assertEquals(91, p.get("execution_id").asInt());
            assertEquals("/dags/late.py:5 main", p.get("callsite").asText());
        } finally {
            worker = null;
            sparkListener.interrupt();
            sparkListener.join(5_000);
        }
        // an end that never comes: reported after the bound, without its execution
        JsonNode p = report("save", FakePlans.v1Write(), null, 3.0, null).get(1).get("payload");
        assertTrue(p.get("execution_id").isNull());
        assertTrue(p.get("callsite").isNull());
    }

    @Test
    public void samplesForTheSchemaCheck() {
        report("save", FakePlans.v1Write(), 250.5, null);
        report("append", FakePlans.v2Append(), 5.0, null);
        report("collect", FakePlans.failedBeforePlanning(), null, new RuntimeException("boom"));
        EventSamples.add(transport.events());
    }
}
