package dev.runlink.spark;

import dev.runlink.spark.context.WorkContext;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * On an application shared by several Airflow tasks (a Spark Connect server, a long-running cluster), the context
 * of the task that caused each running job, read from the job's {@code spark.runlink.context} property. Listener
 * thread only; an entry lives from job start to job end, and jobs whose end never came age out past {@link #MAX},
 * so memory stays bounded however long the application runs.
 */
final class JobContexts {
    static final int MAX = 10_000;

    private final Map<Integer, Map<String, String>> byJob =
        new LinkedHashMap<Integer, Map<String, String>>(64, 0.75f, false) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<Integer, Map<String, String>> eldest) {
                return size() > MAX;
            }
        };

    /** At job start: the job's context (null when its properties carry none), kept until the job ends. */
    Map<String, String> started(int jobId, Properties properties) {
        Map<String, String> context = of(properties);
        if (context != null) {
            byJob.put(jobId, context);
        }
        return context;
    }

    /** At job end: the job's context, forgotten. */
    Map<String, String> ended(int jobId) {
        return byJob.remove(jobId);
    }

    /** A stage's: the context of the first of its jobs that has one. */
    Map<String, String> ofJobs(List<Integer> jobIds) {
        if (jobIds == null) {
            return null;
        }
        for (Integer jobId : jobIds) {
            Map<String, String> context = byJob.get(jobId);
            if (context != null) {
                return context;
            }
        }
        return null;
    }

    int size() {
        return byJob.size();
    }

    /** The context a job's (or stage's) properties carry, or null. */
    static Map<String, String> of(Properties properties) {
        return properties == null ? null : WorkContext.parse(properties.getProperty(WorkContext.PROPERTY));
    }
}
