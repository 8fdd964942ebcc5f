package dev.runlink.spark.delivery;

import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;

/** Logs a warning the first time only: a failing tracker must not flood the driver log. */
public final class Once {
    private final AtomicBoolean done = new AtomicBoolean();

    public void warn(Logger log, String message, Throwable error) {
        if (done.compareAndSet(false, true)) {
            if (error == null) {
                log.warn(message);
            } else {
                log.warn(message, error);
            }
        }
    }
}
