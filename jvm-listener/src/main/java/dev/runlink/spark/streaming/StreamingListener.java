package dev.runlink.spark.streaming;

import dev.runlink.spark.context.WorkContext;
import dev.runlink.spark.delivery.Guard;
import dev.runlink.spark.plan.Reflect;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.spark.sql.streaming.StreamingQueryListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Collects Spark's streaming events for {@link StreamingQueries}: each callback copies a few fields and hands them
 * on (O(1), no aggregation here). Every callback catches Throwable; a LinkageError (a Spark version this jar does
 * not fit) turns the listener off instead of failing the query. onQueryIdle (Spark 3.5+) is left to Spark's
 * default: an idle query has nothing to add, and its partial interval is reported by the next batch or the end.
 */
public class StreamingListener extends StreamingQueryListener {
    private static final Logger LOG = LoggerFactory.getLogger(StreamingListener.class);

    private final StreamingQueries queries;
    private final Supplier<Map<String, String>> workContext;
    private final Guard guard = new Guard("streaming listener", "an event", "queries run unaffected");

    /** {@code queries} null: tracking is off, every callback returns at once. */
    public StreamingListener(StreamingQueries queries) {
        this(queries, StreamingListener::startingTaskContext);
    }

    /** {@code workContext}: read in onQueryStarted, the context of the task that started the query (or null). */
    public StreamingListener(StreamingQueries queries, Supplier<Map<String, String>> workContext) {
        this.queries = queries;
        this.workContext = workContext;
        if (queries == null) {
            guard.disable();
        }
    }

    @Override
    public void onQueryStarted(QueryStartedEvent event) {
        if (guard.disabled()) {
            return;
        }
        try {
            queries.started(String.valueOf(event.id()), String.valueOf(event.runId()), event.name(),
                BatchProgress.parseMillis(event.timestamp()), workContext.get());
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onQueryProgress(QueryProgressEvent event) {
        if (guard.disabled()) {
            return;
        }
        try {
            queries.progress(BatchProgress.of(event.progress()));
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onQueryTerminated(QueryTerminatedEvent event) {
        if (guard.disabled()) {
            return;
        }
        try {
            String exception = event.exception().isDefined() ? event.exception().get() : null;
            queries.terminated(String.valueOf(event.id()), String.valueOf(event.runId()), exception);
        } catch (Throwable t) {
            fail(t);
        }
    }

    /**
     * On a shared application, the context of the task that started the query ({@code spark.runlink.context}), or
     * null. Spark calls onQueryStarted on the query's own thread while start() waits for it; that thread was
     * created by the starting thread, so it inherits its local properties (a classic session's, set per task
     * thread by track_session) and its active session (a Spark Connect session, whose SQL conf carries it).
     * Read by name: a Spark without these members gives null, never an error.
     */
    public static Map<String, String> startingTaskContext() {
        String value = stringOf(activeSparkContext(), "getLocalProperty");
        if (value == null) {
            Object session = Reflect.option(
                Reflect.callStatic("org.apache.spark.sql.SparkSession", "getActiveSession"));
            value = stringOf(Reflect.call(session, "conf"), "getOption");
        }
        return WorkContext.parse(value);
    }

    /** SparkContext.getActive (an Option), through the companion object. */
    private static Object activeSparkContext() {
        return Reflect.callOnObject("org.apache.spark.SparkContext", "getActive");
    }

    /** target.getter(PROPERTY) (a scala.Option unwrapped) as text, or null. */
    private static String stringOf(Object target, String getter) {
        if (target == null) {
            return null;
        }
        try {
            Object value = Reflect.option(target.getClass().getMethod(getter, String.class)
                .invoke(target, WorkContext.PROPERTY));
            return value == null ? null : value.toString();
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    private void fail(Throwable t) {
        guard.fail(LOG, t);
    }
}
