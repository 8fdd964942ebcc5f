package dev.runlink.spark.delivery;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class GuardTest {
    private static final Logger LOG = LoggerFactory.getLogger(GuardTest.class);

    @Test
    public void anOrdinaryErrorIsLoggedAndTheListenerCarriesOn() {
        Guard guard = new Guard("test listener", "an event", "nothing is affected");
        assertFalse(guard.fail(LOG, new IllegalStateException("boom")));
        assertFalse(guard.fail(LOG, new IllegalStateException("again")));
        assertFalse(guard.disabled());
    }

    @Test
    public void aJarThatDoesNotFitTurnsTheListenerOffForGood() {
        Guard guard = new Guard("test listener", "an event", "nothing is affected");
        assertTrue(guard.fail(LOG, new NoSuchMethodError("org.apache.spark.Gone.method()")));
        assertTrue(guard.disabled());
        assertFalse(guard.fail(LOG, new IllegalStateException("later")));
        assertTrue(guard.disabled());
    }

    @Test
    public void trackingOffDisablesWithoutAFailure() {
        Guard guard = new Guard("test listener", "an event", "nothing is affected");
        guard.disable();
        assertTrue(guard.disabled());
    }
}
