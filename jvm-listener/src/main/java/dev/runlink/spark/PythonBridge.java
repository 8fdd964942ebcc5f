package dev.runlink.spark;

import org.apache.spark.api.java.JavaSparkContext;

/**
 * What runlink's PySpark wrappers need from the JVM, in one py4j call where PySpark would make two.
 *
 * <p>Each wrapped DataFrame action sets Spark's call site to the user's Python line before it runs and clears it
 * after: Spark then names that line in its jobs (the Spark UI, {@code spark_job.start.callsite}) and in the SQL
 * execution, where {@link RunlinkQueryListener} reads it (see {@link Executions}). Never throws.
 */
public final class PythonBridge {
    private static final String SHORT = "callSite.short";
    private static final String LONG = "callSite.long";

    private PythonBridge() {}

    /** Sets (or, with nulls, clears) the calling thread's call site; false when it could not. */
    public static boolean setCallSite(JavaSparkContext context, String shortForm, String longForm) {
        try {
            context.setLocalProperty(SHORT, shortForm);
            context.setLocalProperty(LONG, longForm);
            return true;
        } catch (Throwable t) {
            return false;
        }
    }
}
