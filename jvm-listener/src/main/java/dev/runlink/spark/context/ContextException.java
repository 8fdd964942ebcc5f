package dev.runlink.spark.context;

/** A context value that cannot be understood (python: runlink.context.ContextError). */
public final class ContextException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public ContextException(String message) {
        super(message);
    }
}
