package dev.runlink.spark;

import dev.runlink.spark.context.Ids;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.delivery.Guard;
import dev.runlink.spark.plan.PlanInspector;
import dev.runlink.spark.plan.Reflect;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.execution.QueryExecution;
import org.apache.spark.sql.util.QueryExecutionListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports every Dataset action (success or failure) with its input and output datasets, row counts and a
 * size-capped plan summary ({@code spark.sql.queryExecutionListeners=dev.runlink.spark.RunlinkQueryListener}).
 *
 * <p>The callback only hands the QueryExecution to the agent's worker (a bounded queue: when full the query is
 * dropped and counted); plan walking happens there. QueryExecution's members differ between Spark 3.5 and 4.x
 * (e.g. sparkSession()), so it is read by name only.
 */
public class RunlinkQueryListener implements QueryExecutionListener {
    private static final Logger LOG = LoggerFactory.getLogger(RunlinkQueryListener.class);
    /** How long the worker waits for a late-attached Spark listener to see an execution end (see Executions). */
    static final long LATE_END_WAIT_MS = 500;

    private Settings settings;
    private Agent agent;
    private final Guard guard = new Guard("query listener", "a query", "queries run unaffected");
    private volatile String appId;
    private volatile String attemptId;

    public RunlinkQueryListener(SparkConf sparkConf) {
        try {
            init(SparkConfs.toMap(sparkConf));
        } catch (Throwable t) {
            fail(t);
        }
    }

    public RunlinkQueryListener() {
        try {
            init(SparkConfs.toMap(SparkConfs.active()));
        } catch (Throwable t) {
            fail(t);
        }
    }

    /** For tests. */
    RunlinkQueryListener(Map<String, String> conf, Map<String, String> env, Agent agent) {
        this.settings = Settings.resolve(conf, env);
        this.agent = agent;
        this.appId = conf.get("spark.app.id");
        this.attemptId = conf.get("spark.app.attempt.id");
    }

    private void init(Map<String, String> conf) {
        settings = Settings.fromSparkConf(conf);
        if (!settings.tracking) {
            guard.disable();
            return;
        }
        agent = Agent.forSettings(settings);
        appId = conf.get("spark.app.id");
        attemptId = conf.get("spark.app.attempt.id");
    }

    @Override
    public void onSuccess(String funcName, QueryExecution qe, long durationNs) {
        handOff(funcName, qe, durationNs / 1e6, null);
    }

    @Override
    public void onFailure(String funcName, QueryExecution qe, Exception exception) {
        handOff(funcName, qe, null, exception);
    }

    private void handOff(final String funcName, final Object qe, final Double durationMs, final Exception error) {
        if (guard.disabled() || agent == null) {
            return;
        }
        try {
            final String time = Json.now();
            final Executions.Execution execution = Executions.take(qe);
            agent.submit(() -> report(funcName, qe, execution, durationMs, error, time));
        } catch (Throwable t) {
            fail(t);
        }
    }

    /**
     * Worker thread: walks the plan and emits one sql_query event. A listener attached to a running session sits
     * before RunlinkSparkListener on the queue, so the execution may only be known a moment later.
     */
    void report(String funcName, Object qe, Executions.Execution known, Double durationMs, Exception error,
                String time) {
        try {
            Executions.Execution execution = known != null ? known : Executions.await(qe, LATE_END_WAIT_MS);
            if (appId == null) { // a listener built without the application's conf
                Object context = Reflect.call(Reflect.call(qe, "sparkSession"), "sparkContext");
                appId = Reflect.string(context, "applicationId");
                attemptId = Reflect.string(context, "applicationAttemptId");
                if (appId == null) {
                    return;
                }
            }
            PlanInspector plan = PlanInspector.inspect(qe, settings.maxPlanChars);
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("execution_id", execution == null ? null : execution.id);
            p.put("action", Json.cap(funcName, 255));
            p.put("duration_ms", durationMs);
            p.put("success", error == null);
            p.put("error", PlanInspector.error(error));
            p.put("inputs", plan.inputs());
            p.put("outputs", plan.outputs());
            p.put("plan_summary", plan.planSummary());
            p.put("plan_truncated", plan.planTruncated());
            p.put("callsite", execution == null ? null : execution.callsite());
            p.put("listener", "jvm");
            agent.emit(new Event(Ids.randomEventId(), "sql_query", time, settings.context, Json.cap(appId, 255),
                Json.cap(attemptId, 64), p, execution == null ? null : execution.context));
        } catch (Throwable t) {
            fail(t);
        }
    }

    private void fail(Throwable t) {
        guard.fail(LOG, t);
    }
}
