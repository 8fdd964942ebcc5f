package dev.runlink.spark;

import dev.runlink.spark.context.ContextNormalizer;
import dev.runlink.spark.context.Ids;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.context.WorkContext;
import dev.runlink.spark.delivery.Guard;
import dev.runlink.spark.plan.Reflect;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.SparkConf;
import org.apache.spark.TaskEndReason;
import org.apache.spark.executor.TaskMetrics;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerApplicationEnd;
import org.apache.spark.scheduler.SparkListenerApplicationStart;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.scheduler.SparkListenerExecutorAdded;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerJobEnd;
import org.apache.spark.scheduler.SparkListenerJobStart;
import org.apache.spark.scheduler.SparkListenerStageCompleted;
import org.apache.spark.scheduler.SparkListenerStageSubmitted;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.scheduler.StageInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports a Spark application, its jobs, stages and executors to the runlink tracker
 * ({@code spark.extraListeners=dev.runlink.spark.RunlinkSparkListener}).
 *
 * <p>Callbacks run on Spark's listener thread: each builds one small event and offers it to a bounded queue
 * (O(1), never blocks). Every callback catches Throwable; a LinkageError (a Spark/Scala version this jar does not
 * fit) turns the listener off instead of stopping the SparkContext.
 */
public class RunlinkSparkListener extends SparkListener {
    private static final Logger LOG = LoggerFactory.getLogger(RunlinkSparkListener.class);
    private static final int MAX_TEXT = 65_536;
    private static final long HEALTH_INTERVAL_MS = 60_000;
    private static final String SQL_EXECUTION_START =
        "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart";
    private static final String SQL_EXECUTION_END = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd";

    private Settings settings;
    private Agent agent;
    private Map<String, String> conf;
    private final Guard guard = new Guard("Spark listener", "a callback", "the application is not affected");

    private String appId;
    private String attemptId;
    private String sourceId;
    private long reportedDrops;
    private long lastHealthMillis;

    /** Running stages tracked at once, at most (Spark runs far fewer; a stage whose end is never seen ages out). */
    private static final int MAX_RUNNING_STAGES = 10_000;
    /** {@code spark.runlink.taskDistributions=false}: only the failed/killed counts, no histograms per stage. */
    static final String DISTRIBUTIONS_KEY = "spark.runlink.taskDistributions";

    // Listener-bus thread only. Keys: stage key (stageId << 32 | attempt) -> the running stage's task distribution.
    private final Map<Long, TaskDistribution> running = new HashMap<>();
    private long lastStageKey = -1;
    private TaskDistribution lastStage;
    private boolean distributions = true;
    private final Map<Integer, int[]> jobStages = new HashMap<>();
    private final Map<Integer, String> jobCallsites = new HashMap<>();
    private final Map<Integer, List<Integer>> stageJobs = new HashMap<>();
    private final JobContexts jobContexts = new JobContexts();

    public RunlinkSparkListener(SparkConf sparkConf) {
        try {
            init(SparkConfs.toMap(sparkConf), null);
        } catch (Throwable t) {
            fail(t);
        }
    }

    public RunlinkSparkListener() {
        try {
            init(SparkConfs.toMap(SparkConfs.active()), null);
        } catch (Throwable t) {
            fail(t);
        }
    }

    /** For tests: explicit conf and environment, and the agent to report to. */
    RunlinkSparkListener(Map<String, String> conf, Map<String, String> env, Agent agent) {
        this.settings = Settings.resolve(conf, env);
        this.conf = conf;
        this.agent = agent;
        this.distributions = !"false".equalsIgnoreCase(conf.get(DISTRIBUTIONS_KEY));
        setApp(conf.get("spark.app.id"), conf.get("spark.app.attempt.id"));
    }

    private void init(Map<String, String> sparkConf, Agent given) {
        this.conf = sparkConf;
        this.settings = Settings.fromSparkConf(sparkConf);
        if (!settings.tracking) {
            guard.disable();
            LOG.info("runlink: tracking is off (spark.runlink.tracking / RUNLINK_TRACKING)");
            return;
        }
        this.agent = given != null ? given : Agent.forSettings(settings);
        this.distributions = !"false".equalsIgnoreCase(sparkConf.get(DISTRIBUTIONS_KEY));
        setApp(sparkConf.get("spark.app.id"), sparkConf.get("spark.app.attempt.id"));
        LOG.info("runlink: reporting Spark application {} to {}", appId, settings.url);
    }

    private void setApp(String id, String attempt) {
        if (id != null) {
            appId = Json.cap(id, 255);
            attemptId = Json.cap(attempt, 64);
            sourceId = Ids.sparkAppId(appId, attemptId);
        }
    }

    private void fail(Throwable t) {
        if (guard.fail(LOG, t)) {
            Executions.unwatched();
        }
    }

    private boolean active() {
        return !guard.disabled() && agent != null;
    }

    private void emit(String type, String discriminator, long timeMillis, Map<String, Object> payload) {
        emit(type, discriminator, timeMillis, payload, null);
    }

    /** {@code workContext}: the Airflow context of the task whose work this is, on a shared application. */
    private void emit(String type, String discriminator, long timeMillis, Map<String, Object> payload,
                      Map<String, String> workContext) {
        if (appId == null) {
            return; // every spark_* event needs its application; Spark sets spark.app.id before listeners start
        }
        String id = discriminator == null ? Ids.randomEventId() : Ids.eventId(sourceId, type, discriminator);
        agent.emit(new Event(id, type, Json.formatEpochMillis(timeMillis), settings.context, appId, attemptId,
            payload, workContext));
    }

    @Override
    public void onApplicationStart(SparkListenerApplicationStart event) {
        if (!active()) {
            return;
        }
        try {
            Object id = Reflect.option(event.appId());
            Object attempt = Reflect.option(event.appAttemptId());
            if (id != null) {
                setApp(id.toString(), attempt == null ? conf.get("spark.app.attempt.id") : attempt.toString());
            }
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("name", Json.cap(event.appName(), 1000));
            p.put("spark_version", Json.cap(str(Reflect.callStatic("org.apache.spark.package", "SPARK_VERSION")), 64));
            p.put("scala_version", Json.cap(str(Reflect.callStatic("scala.util.Properties", "versionNumberString")),
                64));
            p.put("master", Json.cap(conf.get("spark.master"), 1000));
            String deployMode = conf.get("spark.submit.deployMode");
            p.put("deploy_mode", deployMode == null ? "client" : Json.cap(deployMode, 64));
            p.put("user", Json.cap(event.sparkUser(), 255));
            p.put("start_time", Json.formatEpochMillis(event.time()));
            p.put("ui_url", Json.cap(uiUrl(), 4096));
            p.put("conf", SparkConfs.masked(conf));
            emit("spark_app.start", "", event.time(), p);
        } catch (Throwable t) {
            fail(t);
        }
    }

    /** The UI address of the active SparkContext, when Spark exposes it (best effort, by name). A driver posts
     *  its application start before it registers as the active context, so in a plain spark-submit this is
     *  usually null and the tracker links the History Server the conf names instead. */
    private static String uiUrl() {
        Object context = Reflect.option(Reflect.callOnObject("org.apache.spark.SparkContext", "getActive"));
        return str(Reflect.get(context, "uiWebUrl"));
    }

    @Override
    public void onApplicationEnd(SparkListenerApplicationEnd event) {
        if (!active()) {
            return;
        }
        try {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("end_time", Json.formatEpochMillis(event.time()));
            Long exitCode = Reflect.number(event, "exitCode"); // Spark 4.0+ only
            p.put("exit_code", exitCode);
            p.put("state", exitCode == null ? "finished" : exitCode == 0 ? "succeeded" : "failed");
            emit("spark_app.end", "", event.time(), p);
            agent.finish(settings.context, appId, attemptId, settings.flushTimeoutMs);
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onJobStart(SparkListenerJobStart event) {
        if (!active()) {
            return;
        }
        try {
            int jobId = event.jobId();
            // stageIds() is scala.collection.Seq on 2.12 and immutable.Seq on 2.13: by name only
            List<Object> ids = Reflect.list(Reflect.call(event, "stageIds"), 100_000);
            int[] stages = new int[ids.size()];
            List<Integer> stageList = new ArrayList<>(ids.size());
            for (int i = 0; i < stages.length; i++) {
                stages[i] = ((Number) ids.get(i)).intValue();
                stageList.add(stages[i]);
                List<Integer> jobs = stageJobs.get(stages[i]);
                if (jobs == null) {
                    jobs = new ArrayList<>(1);
                    stageJobs.put(stages[i], jobs);
                }
                jobs.add(jobId);
            }
            jobStages.put(jobId, stages);
            Properties props = event.properties();
            Map<String, String> workContext = jobContexts.started(jobId, props);
            Long executionId = ContextNormalizer.intOrNull(prop(props, "spark.sql.execution.id"));
            if (workContext != null && executionId != null) {
                Executions.jobContext(executionId, workContext);
            }
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("job_id", jobId);
            p.put("stage_ids", stageList);
            p.put("job_group", Json.cap(prop(props, "spark.jobGroup.id"), 1000));
            p.put("description", Json.cap(prop(props, "spark.job.description"), MAX_TEXT));
            p.put("sql_execution_id", executionId);
            p.put("submission_time", Json.formatEpochMillis(event.time()));
            String callsite = CallSites.of(prop(props, "callSite.short"), prop(props, "callSite.long"));
            if (callsite == null) { // a Spark Connect server's job: the client's line, from its operation's tags
                callsite = CallSites.fromTags(prop(props, "spark.job.tags"));
                if (callsite != null && executionId != null) {
                    Executions.jobCallsite(executionId, callsite);
                }
            }
            if (callsite != null) {
                jobCallsites.put(jobId, callsite);
            }
            p.put("callsite", callsite);
            emit("spark_job.start", Integer.toString(jobId), event.time(), p, workContext);
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onJobEnd(SparkListenerJobEnd event) {
        if (!active()) {
            return;
        }
        try {
            int jobId = event.jobId();
            forgetJob(jobId);
            Map<String, String> workContext = jobContexts.ended(jobId);
            Object result = event.jobResult();
            // JobSucceeded is a Scala object, JobFailed a case class with exception(): both by name
            boolean succeeded = result != null && result.getClass().getName().endsWith("JobSucceeded$");
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("job_id", jobId);
            p.put("completion_time", Json.formatEpochMillis(event.time()));
            p.put("result", succeeded ? "succeeded" : "failed");
            if (!succeeded) {
                Object error = Reflect.call(result, "exception");
                p.put("failure_reason", Json.cap(error == null ? str(result) : error.toString(), MAX_TEXT));
            }
            emit("spark_job.end", Integer.toString(jobId), event.time(), p, workContext);
            reportDrops();
        } catch (Throwable t) {
            fail(t);
        }
    }

    /** A long application hears about lost events before its end: at most once a minute, only after new drops. */
    private void reportDrops() {
        long dropped = agent.dropped();
        long now = System.currentTimeMillis();
        if (dropped > reportedDrops && now - lastHealthMillis >= HEALTH_INTERVAL_MS) {
            reportedDrops = dropped;
            lastHealthMillis = now;
            agent.emit(agent.health(settings.context, appId, attemptId, "events dropped"));
        }
    }

    private void forgetJob(int jobId) {
        jobCallsites.remove(jobId);
        int[] stages = jobStages.remove(jobId);
        if (stages == null) {
            return;
        }
        for (int stage : stages) {
            List<Integer> jobs = stageJobs.get(stage);
            if (jobs != null) {
                jobs.remove(Integer.valueOf(jobId));
                if (jobs.isEmpty()) {
                    stageJobs.remove(stage);
                }
            }
        }
    }

    @Override
    public void onStageSubmitted(SparkListenerStageSubmitted event) {
        if (!active()) {
            return;
        }
        try {
            StageInfo info = event.stageInfo();
            if (running.size() < MAX_RUNNING_STAGES) {
                running.put(stageKey(info.stageId(), info.attemptNumber()), new TaskDistribution());
            }
        } catch (Throwable t) {
            fail(t);
        }
    }

    /**
     * Hot path (once per task): the task's figures go into its running stage's histograms (a few array increments;
     * the last stage's distribution is kept at hand, so a stage's tasks skip the map lookup), a failure into its
     * counts.
     */
    @Override
    public void onTaskEnd(SparkListenerTaskEnd event) {
        if (guard.disabled()) {
            return;
        }
        try {
            long key = stageKey(event.stageId(), event.stageAttemptId());
            TaskDistribution stage = key == lastStageKey ? lastStage : running.get(key);
            if (stage == null) {
                return; // its stage already ended, or was never seen
            }
            lastStageKey = key;
            lastStage = stage;
            TaskEndReason reason = event.reason();
            if (reason instanceof org.apache.spark.Success$) {
                if (distributions) {
                    stage.succeeded(event.taskInfo(), event.taskMetrics());
                }
            } else {
                stage.ended(reason);
            }
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onStageCompleted(SparkListenerStageCompleted event) {
        if (!active()) {
            return;
        }
        try {
            StageInfo info = event.stageInfo();
            int stageId = info.stageId();
            int attempt = info.attemptNumber();
            long key = stageKey(stageId, attempt);
            TaskDistribution tasks = running.remove(key);
            if (key == lastStageKey) {
                lastStageKey = -1;
                lastStage = null;
            }
            String failure = (String) Reflect.option(info.failureReason());
            Long submitted = (Long) Reflect.option(info.submissionTime());
            Long completed = (Long) Reflect.option(info.completionTime());
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("stage_id", stageId);
            p.put("attempt_id", attempt);
            p.put("name", Json.cap(info.name(), 4096));
            p.put("num_tasks", info.numTasks());
            p.put("failed_tasks", tasks == null ? null : tasks.failed);
            p.put("killed_tasks", tasks == null ? null : tasks.killed);
            p.put("submission_time", submitted == null ? null : Json.formatEpochMillis(submitted));
            p.put("completion_time", completed == null ? null : Json.formatEpochMillis(completed));
            p.put("status", failure == null ? "succeeded" : "failed");
            p.put("failure_reason", Json.cap(failure, MAX_TEXT));
            List<Integer> jobs = stageJobs.get(stageId);
            p.put("job_ids", jobs == null ? new ArrayList<Integer>() : new ArrayList<>(jobs));
            p.put("callsite", stageCallsite(info, jobs));
            p.put("metrics", metrics(info.taskMetrics()));
            Map<String, Object> distribution = tasks == null ? null : tasks.summary();
            if (distribution != null) {
                p.put("distribution", distribution);
            }
            emit("spark_stage.completed", stageId + "." + attempt, completed == null ? now() : completed, p,
                jobContexts.ofJobs(jobs));
        } catch (Throwable t) {
            fail(t);
        }
    }

    /**
     * The user's line that made the stage: from the stage's own call site (its name and details), else its job's
     * (an AQE stage submitted from Spark's own thread names only that thread's frames).
     */
    private String stageCallsite(StageInfo info, List<Integer> jobs) {
        String own = CallSites.of(info.name(), info.details());
        if (own != null || jobs == null) {
            return own;
        }
        for (Integer job : jobs) {
            String callsite = jobCallsites.get(job);
            if (callsite != null) {
                return callsite;
            }
        }
        return null;
    }

    /** The stage's aggregated task metrics, under the schema's stage_metrics names. */
    static Map<String, Object> metrics(TaskMetrics m) {
        return StageMetrics.of(m);
    }

    @Override
    public void onExecutorAdded(SparkListenerExecutorAdded event) {
        if (!active()) {
            return;
        }
        try {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("executor_id", Json.cap(event.executorId(), 255));
            p.put("action", "added");
            p.put("host", Json.cap(event.executorInfo().executorHost(), 255));
            p.put("cores", event.executorInfo().totalCores());
            emit("spark_executor", "added:" + event.executorId(), event.time(), p);
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onExecutorRemoved(SparkListenerExecutorRemoved event) {
        if (!active()) {
            return;
        }
        try {
            Map<String, Object> p = new LinkedHashMap<>();
            p.put("executor_id", Json.cap(event.executorId(), 255));
            p.put("action", "removed");
            p.put("reason", Json.cap(event.reason(), MAX_TEXT));
            emit("spark_executor", "removed:" + event.executorId(), event.time(), p);
        } catch (Throwable t) {
            fail(t);
        }
    }

    /** Only SQL executions matter: their start names the call site, their end ties a QueryExecution to both
     * (see Executions). */
    @Override
    public void onOtherEvent(SparkListenerEvent event) {
        if (guard.disabled()) {
            return;
        }
        try {
            String name = event.getClass().getName();
            if (name.equals(SQL_EXECUTION_START)) {
                Long id = Reflect.number(event, "executionId");
                if (id != null) {
                    Executions.started(id, str(Reflect.call(event, "description")),
                        str(Reflect.call(event, "details")), propagatedContext(event));
                }
            } else if (name.equals(SQL_EXECUTION_END)) {
                Long id = Reflect.number(event, "executionId");
                if (id != null) {
                    Executions.ended(Reflect.call(event, "qe"), id);
                }
            }
        } catch (Throwable t) {
            fail(t);
        }
    }

    /**
     * The context a Spark Connect session set as a session SQL conf: SQLExecutionStart lists the session's
     * modified confs (Spark 3.1+, by name); null when absent (a classic session sets a local property instead,
     * which its jobs carry).
     */
    private static Map<String, String> propagatedContext(SparkListenerEvent event) {
        Object configs = Reflect.call(event, "modifiedConfigs");
        return WorkContext.parse(str(Reflect.option(Reflect.callWith(configs, "get", WorkContext.PROPERTY))));
    }

    private static long stageKey(int stageId, int attempt) {
        return ((long) stageId << 32) | (attempt & 0xffffffffL);
    }

    private static String prop(Properties props, String key) {
        return props == null ? null : props.getProperty(key);
    }

    private static String str(Object value) {
        return value == null ? null : value.toString();
    }

    private static long now() {
        return System.currentTimeMillis();
    }

    // for tests
    String appId() {
        return appId;
    }

    boolean isDisabled() {
        return guard.disabled();
    }

    int jobContextsHeld() {
        return jobContexts.size();
    }
}
