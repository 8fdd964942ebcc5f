package dev.runlink.spark;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * QueryExecution -> its SQL execution: the id and the call site. QueryExecutionListener is told neither
 * (QueryExecution.id is another counter), but RunlinkSparkListener sees both ends of every execution first, since
 * both listeners sit on Spark's shared listener queue and it was registered before the session:
 * SparkListenerSQLExecutionStart carries the call site (Spark's, or the Python line runlink's PySpark wrappers
 * set), SparkListenerSQLExecutionEnd the QueryExecution. The callbacks only store references; the call site is
 * parsed on the query listener's worker. Weak keys and bounded maps: an execution nobody reports on does not stay
 * in memory.
 */
final class Executions {
    private static final int MAX = 10_000;
    private static final Map<Object, Execution> BY_QUERY =
        Collections.synchronizedMap(new WeakHashMap<Object, Execution>());
    private static final Map<Long, String[]> STARTED = Collections.synchronizedMap(
        new LinkedHashMap<Long, String[]>(64, 0.75f, false) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, String[]> eldest) {
                return size() > MAX; // executions that never ended (or ended unseen) age out
            }
        });
    /** A long call site as runlink's Python wrappers write it: {@code file:line in function}, one frame a line. */
    private static final Pattern PYTHON_FRAME = Pattern.compile("^(.+:\\d+) in [^\\n]*");
    /** A short call site as Spark (and PySpark) writes it: {@code collect at App.scala:42}. */
    private static final Pattern SHORT_FORM = Pattern.compile("^\\S+ at (\\S.*:\\d+)$");

    /** What the query listener learns of one execution. */
    static final class Execution {
        final long id;
        private final String description;
        private final String details;

        Execution(long id, String description, String details) {
            this.id = id;
            this.description = description;
            this.details = details;
        }

        /** The user's line that ran the query, or null when Spark's call site names none. */
        String callsite() {
            return Executions.callsite(description, details);
        }
    }

    private Executions() {}

    /** Listener thread, at SQL execution start: keeps the call-site strings Spark already built. */
    static void started(long executionId, String description, String details) {
        STARTED.put(executionId, new String[] {description, details});
    }

    /** Listener thread, at SQL execution end. */
    static void ended(Object queryExecution, long executionId) {
        String[] site = STARTED.remove(executionId);
        if (queryExecution == null) {
            return;
        }
        if (BY_QUERY.size() >= MAX) {
            BY_QUERY.clear(); // only reached without a query listener taking them
        }
        BY_QUERY.put(queryExecution, new Execution(executionId, site == null ? null : site[0],
            site == null ? null : site[1]));
    }

    static Execution take(Object queryExecution) {
        return queryExecution == null ? null : BY_QUERY.remove(queryExecution);
    }

    /**
     * {@code file:line} of the user's code: the first frame of a Python long form (runlink's wrappers), else the
     * location of a short form ({@code collect at /jobs/etl.py:12}, {@code count at App.scala:42}); null for a
     * job description or a JVM stack.
     */
    static String callsite(String description, String details) {
        if (details != null) {
            Matcher python = PYTHON_FRAME.matcher(details);
            if (python.find()) {
                return Json.cap(python.group(1), 4096);
            }
        }
        if (description != null) {
            Matcher shortForm = SHORT_FORM.matcher(description);
            if (shortForm.matches()) {
                return Json.cap(shortForm.group(1), 4096);
            }
        }
        return null;
    }
}
