package dev.runlink.spark.delivery;

import org.slf4j.Logger;

/**
 * What a failing callback does to its listener, the same for the Spark, query and streaming listeners: a
 * {@link LinkageError} (a jar that does not fit this Spark or Scala version) or a {@link VirtualMachineError} turns
 * the listener off for good, since every later callback would fail the same way; any other error is logged once
 * and the listener carries on. Either way the error stops here: a listener must never fail the user's job.
 */
public final class Guard {
    private final String listener;
    private final String unit;
    private final String unaffected;
    private final Once errorOnce = new Once();
    private volatile boolean disabled;

    /**
     * {@code listener} names it in the log ("query listener"), {@code unit} what one callback handles ("a query"),
     * {@code unaffected} what the user keeps ("queries run unaffected").
     */
    public Guard(String listener, String unit, String unaffected) {
        this.listener = listener;
        this.unit = unit;
        this.unaffected = unaffected;
    }

    /** Checked first by every callback: a volatile read. */
    public boolean disabled() {
        return disabled;
    }

    /** Off without a failure (tracking turned off in the conf). */
    public void disable() {
        disabled = true;
    }

    /** Handles a callback's error; true when it turned the listener off. */
    public boolean fail(Logger log, Throwable t) {
        if (t instanceof LinkageError || t instanceof VirtualMachineError) {
            disabled = true;
            log.warn("runlink: " + listener + " disabled (this Spark version does not fit the listener jar, or the "
                + "JVM is in trouble); " + unaffected, t);
            return true;
        }
        errorOnce.warn(log, "runlink: " + listener + " failed on " + unit + "; " + unaffected, t);
        return false;
    }
}
