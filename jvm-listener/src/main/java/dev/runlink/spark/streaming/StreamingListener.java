package dev.runlink.spark.streaming;

import dev.runlink.spark.delivery.Once;
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
    private volatile boolean disabled;
    private final Once errorOnce = new Once();

    /** {@code queries} null: tracking is off, every callback returns at once. */
    public StreamingListener(StreamingQueries queries) {
        this.queries = queries;
        this.disabled = queries == null;
    }

    @Override
    public void onQueryStarted(QueryStartedEvent event) {
        if (disabled) {
            return;
        }
        try {
            queries.started(String.valueOf(event.id()), String.valueOf(event.runId()), event.name(),
                BatchProgress.parseMillis(event.timestamp()));
        } catch (Throwable t) {
            fail(t);
        }
    }

    @Override
    public void onQueryProgress(QueryProgressEvent event) {
        if (disabled) {
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
        if (disabled) {
            return;
        }
        try {
            String exception = event.exception().isDefined() ? event.exception().get() : null;
            queries.terminated(String.valueOf(event.id()), String.valueOf(event.runId()), exception);
        } catch (Throwable t) {
            fail(t);
        }
    }

    private void fail(Throwable t) {
        if (t instanceof LinkageError || t instanceof VirtualMachineError) {
            disabled = true;
            LOG.warn("runlink: streaming listener disabled (this Spark version does not fit the listener jar, or "
                + "the JVM is in trouble); queries run unaffected", t);
        } else {
            errorOnce.warn(LOG, "runlink: streaming listener failed on an event; queries run unaffected", t);
        }
    }
}
