package dev.runlink.spark;

import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * QueryExecution -> SQL execution id. QueryExecutionListener is not told the execution id (QueryExecution.id
 * is another counter), but SparkListenerSQLExecutionEnd carries both; RunlinkSparkListener sees that event
 * first, since both listeners sit on Spark's shared listener queue and it was registered before the session.
 * Weak keys: a QueryExecution nobody reports on does not stay in memory.
 */
final class Executions {
    private static final int MAX = 10_000;
    private static final Map<Object, Long> IDS = Collections.synchronizedMap(new WeakHashMap<Object, Long>());

    private Executions() {}

    static void record(Object queryExecution, long executionId) {
        if (queryExecution == null) {
            return;
        }
        if (IDS.size() >= MAX) {
            IDS.clear(); // only reached without a query listener taking the ids
        }
        IDS.put(queryExecution, executionId);
    }

    static Long take(Object queryExecution) {
        return queryExecution == null ? null : IDS.remove(queryExecution);
    }
}
