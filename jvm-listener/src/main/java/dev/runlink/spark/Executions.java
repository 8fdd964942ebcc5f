package dev.runlink.spark;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * QueryExecution -> its SQL execution: the id and the call site. QueryExecutionListener is told neither
 * (QueryExecution.id is another counter), but RunlinkSparkListener sees both ends of every execution first, since
 * both listeners sit on Spark's shared listener queue and it was registered before the session:
 * SparkListenerSQLExecutionStart carries the call site (Spark's, or the Python line runlink's PySpark wrappers
 * set), SparkListenerSQLExecutionEnd the QueryExecution. The callbacks only store references; the call site is
 * parsed on the query listener's worker. Weak keys and bounded maps: an execution nobody reports on does not stay
 * in memory.
 *
 * <p>A RunlinkSparkListener attached to a running session (track_session) sits after the session's query
 * listeners on the queue, so it sees an execution's end just after the query listener was told of it: the worker
 * then waits for it, bounded ({@link #await}).
 */
final class Executions {
    private static final int MAX = 10_000;
    private static final Map<Object, Execution> BY_QUERY =
        Collections.synchronizedMap(new WeakHashMap<Object, Execution>());
    private static final Map<Long, Started> STARTED = Collections.synchronizedMap(
        new LinkedHashMap<Long, Started>(64, 0.75f, false) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, Started> eldest) {
                return size() > MAX; // executions that never ended (or ended unseen) age out
            }
        });
    /** Signalled at every execution end, for a worker in {@link #await}. */
    private static final Object ARRIVAL = new Object();
    /** A RunlinkSparkListener in this JVM sees SQL executions: an execution not known yet is worth waiting for. */
    private static volatile boolean watched;

    /** A running execution, listener thread only: its call-site strings and the task context of its work. */
    private static final class Started {
        final String description;
        final String details;
        Map<String, String> context;
        /** The call site one of its jobs named (a Spark Connect client's line), when Spark's names none. */
        String callsite;

        Started(String description, String details, Map<String, String> context) {
            this.description = description;
            this.details = details;
            this.context = context;
        }
    }

    /** What the query listener learns of one execution. */
    static final class Execution {
        final long id;
        private final String description;
        private final String details;
        /** On a shared application, the Airflow context of the task that ran the query (else null). */
        final Map<String, String> context;
        private final String jobCallsite;

        Execution(long id, String description, String details, Map<String, String> context, String jobCallsite) {
            this.id = id;
            this.description = description;
            this.details = details;
            this.context = context;
            this.jobCallsite = jobCallsite;
        }

        /**
         * The user's line that ran the query ({@link CallSites}): Spark's call site, else the one its jobs named
         * (Spark Connect); null when neither names one.
         */
        String callsite() {
            String own = CallSites.of(description, details);
            return own != null ? own : jobCallsite;
        }
    }

    private Executions() {}

    /**
     * Listener thread, at SQL execution start: keeps the call-site strings Spark already built, and the task context
     * the session propagated (Spark Connect's session conf), if any.
     */
    static void started(long executionId, String description, String details, Map<String, String> context) {
        watched = true;
        STARTED.put(executionId, new Started(description, details, context));
    }

    /** Listener thread, at the start of one of the execution's jobs: its task context, when none is known yet. */
    static void jobContext(long executionId, Map<String, String> context) {
        Started started = STARTED.get(executionId);
        if (started != null && started.context == null) {
            started.context = context;
        }
    }

    /** Listener thread, at the start of one of the execution's jobs: the client's line its tags named. */
    static void jobCallsite(long executionId, String callsite) {
        Started started = STARTED.get(executionId);
        if (started != null && started.callsite == null) {
            started.callsite = callsite;
        }
    }

    /** The Spark listener stopped (disabled): nobody will record executions any more. */
    static void unwatched() {
        watched = false;
        synchronized (ARRIVAL) {
            ARRIVAL.notifyAll();
        }
    }

    /** Listener thread, at SQL execution end. */
    static void ended(Object queryExecution, long executionId) {
        Started started = STARTED.remove(executionId);
        if (queryExecution == null) {
            return;
        }
        if (BY_QUERY.size() >= MAX) {
            BY_QUERY.clear(); // only reached without a query listener taking them
        }
        BY_QUERY.put(queryExecution, started == null ? new Execution(executionId, null, null, null, null)
            : new Execution(executionId, started.description, started.details, started.context, started.callsite));
        synchronized (ARRIVAL) {
            ARRIVAL.notifyAll();
        }
    }

    static Execution take(Object queryExecution) {
        return queryExecution == null ? null : BY_QUERY.remove(queryExecution);
    }

    /**
     * Worker thread only: {@link #take}, waiting up to {@code timeoutMs} for the execution's end while a Spark
     * listener watches executions; without one it does not wait at all.
     */
    static Execution await(Object queryExecution, long timeoutMs) {
        if (queryExecution == null) {
            return null;
        }
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        synchronized (ARRIVAL) {
            Execution execution = take(queryExecution);
            while (execution == null && watched) {
                long leftMs = (deadline - System.nanoTime()) / 1_000_000L;
                if (leftMs <= 0) {
                    return null;
                }
                try {
                    ARRIVAL.wait(leftMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt(); // the agent is shutting down: report without it
                    return null;
                }
                execution = take(queryExecution);
            }
            return execution;
        }
    }
}
