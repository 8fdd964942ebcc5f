package dev.runlink.spark;

import dev.runlink.spark.protocol.Json;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The user's code line behind a job, stage or SQL execution, as {@code file:line function}, from the call-site
 * pair Spark keeps for it (the job's {@code callSite.short}/{@code callSite.long} properties, a stage's name and
 * details, an SQL execution's description and details).
 *
 * <p>Sources, first match wins: the Python long form runlink's PySpark wrappers set ({@code file:line in function},
 * one frame a line); PySpark's own short form ({@code collect at /jobs/etl.py:12}, no function known); the first
 * frame of a JVM long form that is not Spark, Scala, the JDK or py4j ({@code App.scala:42 com.acme.App$.main}, the
 * user's frame of a Scala/Java application); a short form the user set by hand. A PySpark driver without the
 * wrappers gives only JVM internals ({@code NativeMethodAccessorImpl.java:0}, an AQE thread's
 * {@code CompletableFuture.java}): null then, never an internal frame.
 */
final class CallSites {
    static final int MAX_CHARS = 4096;
    /** First line of runlink's Python long form. */
    private static final Pattern PYTHON_FRAME = Pattern.compile("^(.+:\\d+) in ([^\\n]*)");
    /** Spark's and PySpark's short form. */
    private static final Pattern SHORT_FORM = Pattern.compile("^\\S+ at (\\S.*:-?\\d+)$");
    /** One JVM stack frame as StackTraceElement.toString() writes it (module prefixes allowed). */
    private static final Pattern JVM_FRAME = Pattern.compile("^\\s*(?:at\\s+)?(?:[^/(\\s]+/)*([\\w$.]+)\\.([\\w$<>]+)"
        + "\\(([^():]+):(\\d+)\\)\\s*$");
    private static final String[] INTERNAL = {
        "org.apache.spark.", "scala.", "java.", "javax.", "jdk.", "sun.", "com.sun.", "py4j.", "io.netty.",
        "io.grpc.", "com.google.", "org.sparkproject.", "org.apache.hadoop.", "com.fasterxml.",
    };

    /** The operation tag runlink's Spark Connect wrappers set (pyspark_listener.CONNECT_TAG). */
    static final String CONNECT_TAG = "runlink-callsite=";

    private CallSites() {}

    /**
     * The Python line a Spark Connect client named in its operation's tags: the server turns each into a job tag
     * ({@code spark.job.tags}, comma-separated, prefixed with the session's ids); null when none does.
     */
    static String fromTags(String jobTags) {
        if (jobTags == null) {
            return null;
        }
        int at = jobTags.indexOf(CONNECT_TAG);
        if (at < 0) {
            return null;
        }
        int end = jobTags.indexOf(',', at);
        String value = jobTags.substring(at + CONNECT_TAG.length(), end < 0 ? jobTags.length() : end).trim();
        return value.isEmpty() ? null : Json.cap(value, MAX_CHARS);
    }

    /** {@code file:line function} of the user's code, or null when the pair names none. */
    static String of(String shortForm, String longForm) {
        if (longForm != null && !longForm.isEmpty()) {
            Matcher python = PYTHON_FRAME.matcher(longForm);
            if (python.find()) {
                return Json.cap(python.group(1) + " " + python.group(2).trim(), MAX_CHARS);
            }
        }
        Matcher shortMatch = shortForm == null ? null : SHORT_FORM.matcher(shortForm.trim());
        if (shortMatch != null && shortMatch.matches() && shortMatch.group(1).matches(".+\\.py:\\d+")) {
            return Json.cap(shortMatch.group(1), MAX_CHARS);
        }
        if (longForm != null && !longForm.isEmpty()) {
            return userFrame(longForm);
        }
        if (shortForm != null && !shortForm.trim().isEmpty() && (shortMatch == null || !shortMatch.matches())) {
            return Json.cap(shortForm.trim(), MAX_CHARS); // set by the user's code (sc.setCallSite("..."))
        }
        return null;
    }

    /** The first frame of a JVM stack outside Spark, Scala, the JDK and py4j, or null. */
    static String userFrame(String stack) {
        for (String line : stack.split("\n")) {
            Matcher frame = JVM_FRAME.matcher(line);
            if (frame.matches() && !internal(frame.group(1))) {
                return Json.cap(frame.group(3) + ":" + frame.group(4) + " " + frame.group(1) + "."
                    + frame.group(2), MAX_CHARS);
            }
        }
        return null;
    }

    private static boolean internal(String className) {
        if (className.startsWith("org.apache.spark.examples.")) {
            return false;
        }
        for (String prefix : INTERNAL) {
            if (className.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }
}
