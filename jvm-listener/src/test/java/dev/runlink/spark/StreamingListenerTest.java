package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.context.WorkContext;
import dev.runlink.spark.streaming.StreamingListener;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.spark.sql.streaming.SinkProgress;
import org.apache.spark.sql.streaming.SourceProgress;
import org.apache.spark.sql.streaming.StateOperatorProgress;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryProgressEvent;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryStartedEvent;
import org.apache.spark.sql.streaming.StreamingQueryListener.QueryTerminatedEvent;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.junit.After;
import org.junit.Test;
import scala.Option;

/** RunlinkStreamingListener fed Spark's own streaming events, through the agent to the wire. */
public class StreamingListenerTest {
    static final UUID QUERY = UUID.fromString("11111111-2222-3333-4444-555555555555");
    static final UUID RUN = UUID.fromString("66666666-7777-8888-9999-000000000000");

    private final TestSupport.RecordingTransport transport = new TestSupport.RecordingTransport();
    private final Agent agent = new Agent(TestSupport.settings("spark.runlink.batchIntervalMs", "0"), transport);

    @After
    public void tearDown() {
        agent.delivery.close();
    }

    /** A progress report as Spark builds it: one source, one sink, one state operator, a watermark. */
    static QueryProgressEvent progress(UUID query, UUID run, long batchId, String timestamp, long durationMs,
                                       long rows) {
        SourceProgress source = new SourceProgress("FileStreamSource[file:/data/in]", "0", "1", "1", rows, 0.0, 0.0,
            Collections.<String, String>emptyMap());
        StateOperatorProgress state = new StateOperatorProgress("stateStoreSave", 42, 1, 0, 0, 0, 0, 0, 0, 1, 1,
            Collections.<String, Long>emptyMap());
        return new QueryProgressEvent(new StreamingQueryProgress(query, run, "daily_load", timestamp, batchId,
            durationMs, Collections.<String, Long>emptyMap(),
            Collections.singletonMap("watermark", "2026-12-03T10:00:00.000Z"),
            new StateOperatorProgress[] {state}, new SourceProgress[] {source},
            new SinkProgress("MemorySink", 5L, Collections.<String, String>emptyMap()),
            Collections.<String, org.apache.spark.sql.Row>emptyMap()));
    }

    private RunlinkStreamingListener listener(String interval) {
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "local-stream");
        conf.put("spark.env.AIRFLOW_CTX_DAG_ID", "etl");
        conf.put(RunlinkStreamingListener.INTERVAL_KEY, interval);
        return new RunlinkStreamingListener(conf, agent);
    }

    @Test
    public void aQueryReportsStartProgressAndFailureOnTheWire() {
        RunlinkStreamingListener listener = listener("1");
        listener.onQueryStarted(new QueryStartedEvent(QUERY, RUN, "daily_load", "2026-12-03T12:00:00.000Z"));
        listener.onQueryProgress(progress(QUERY, RUN, 0, "2026-12-03T12:00:00.000Z", 400, 100));
        listener.onQueryProgress(progress(QUERY, RUN, 1, "2026-12-03T12:00:00.600Z", 600, 50));
        listener.onQueryTerminated(new QueryTerminatedEvent(QUERY, RUN,
            Option.apply("java.lang.IllegalStateException: bad row\n\tat etl.Load(Load.java:3)")));
        assertTrue(agent.delivery.flush(5_000));
        List<JsonNode> events = transport.events();
        EventSamples.add(events);
        assertEquals(3, events.size());
        JsonNode start = events.get(0);
        assertEquals("spark_streaming_query.start", start.get("type").asText());
        assertEquals("local-stream", start.get("spark").get("app_id").asText());
        assertEquals("etl", start.get("context").get("dag_id").asText());
        assertNull("no task's context on the starting thread: the application's own", start.get("work_context"));
        assertEquals(RUN.toString(), start.get("payload").get("run_id").asText());
        JsonNode progress = events.get(1).get("payload");
        assertEquals("spark_streaming_query.progress", events.get(1).get("type").asText());
        assertEquals(2, progress.get("batches").asLong());
        assertEquals(150, progress.get("input_rows").asLong());
        assertEquals(150.0 / 1.2, progress.get("input_rows_per_s").asDouble(), 1e-9);
        assertEquals("2026-12-03T10:00:00.000Z", progress.get("watermark").asText());
        assertEquals(42, progress.get("state_rows").asLong());
        assertEquals("FileStreamSource[file:/data/in]", progress.get("sources").get(0).asText());
        assertEquals("MemorySink", progress.get("sink").asText());
        JsonNode end = events.get(2).get("payload");
        assertEquals(false, end.get("success").asBoolean());
        assertEquals("java.lang.IllegalStateException", end.get("error").get("type").asText());
        assertEquals(2, end.get("total_batches").asLong());
        assertEquals(0, end.get("batches").asLong());
    }

    @Test
    public void everyEventOfAQueryCarriesTheContextOfTheTaskThatStartedIt() {
        Map<String, String> conf = new HashMap<>();
        conf.put("spark.app.id", "connect-server");
        conf.put(RunlinkStreamingListener.INTERVAL_KEY, "1");
        Map<String, String> task = WorkContext.parse("dag_id=etl&task_id=load&try_number=2");
        List<Map<String, String>> asked = new ArrayList<>();
        RunlinkStreamingListener listener = new RunlinkStreamingListener(conf, agent, () -> {
            asked.add(task);
            return task;
        });
        listener.onQueryStarted(new QueryStartedEvent(QUERY, RUN, "daily_load", "2026-12-03T12:00:00.000Z"));
        listener.onQueryProgress(progress(QUERY, RUN, 0, "2026-12-03T12:00:00.000Z", 400, 100));
        listener.onQueryProgress(progress(QUERY, RUN, 1, "2026-12-03T12:00:00.600Z", 600, 50));
        listener.onQueryTerminated(new QueryTerminatedEvent(QUERY, RUN, Option.<String>empty()));
        assertTrue(agent.delivery.flush(5_000));
        List<JsonNode> events = transport.events();
        assertEquals(3, events.size());
        assertEquals(1, asked.size()); // read once, on the starting thread
        for (JsonNode event : events) {
            JsonNode work = event.get("work_context");
            assertEquals(event.get("type").asText(), "etl", work.get("dag_id").asText());
            assertEquals("load", work.get("task_id").asText());
            assertEquals("2", work.get("try_number").asText());
        }
    }

    @Test
    public void withoutASparkContextThereIsNoStartingTaskContext() {
        assertNull(StreamingListener.startingTaskContext());
    }

    @Test
    public void anUnreadableIntervalKeepsTheDefault() {
        assertEquals(30_000, RunlinkStreamingListener.intervalMs("soon"));
        assertEquals(1_000, RunlinkStreamingListener.intervalMs("0"));
        assertEquals(120_000, RunlinkStreamingListener.intervalMs(" 120 "));
    }

    @Test
    public void trackingOffMakesEveryCallbackANoOp() {
        RunlinkStreamingListener off = new RunlinkStreamingListener(
            new org.apache.spark.SparkConf(false).set("spark.runlink.tracking", "false"));
        off.onQueryStarted(new QueryStartedEvent(QUERY, RUN, "x", "2026-12-03T12:00:00.000Z"));
        off.onQueryTerminated(new QueryTerminatedEvent(QUERY, RUN, Option.<String>empty()));
        assertEquals(0, transport.events().size());
    }
}
