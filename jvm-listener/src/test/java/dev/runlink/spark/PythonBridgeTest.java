package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.Test;

/** PythonBridge.setCallSite: the wrappers' one py4j call sets and clears Spark's call site for the thread. */
public class PythonBridgeTest {
    @Test
    public void setsAndClearsTheCallSite() {
        SparkConf conf = new SparkConf().setMaster("local[1]").setAppName("bridge-test")
            .set("spark.ui.enabled", "false");
        JavaSparkContext context = new JavaSparkContext(conf);
        try {
            assertTrue(PythonBridge.setCallSite(context, "collect at /jobs/etl.py:3", "/jobs/etl.py:3 in main"));
            assertEquals("collect at /jobs/etl.py:3", context.getLocalProperty("callSite.short"));
            assertEquals("/jobs/etl.py:3 in main", context.getLocalProperty("callSite.long"));
            assertEquals("collect at /jobs/etl.py:3", context.sc().getCallSite().shortForm());
            assertTrue(PythonBridge.setCallSite(context, null, null));
            assertNull(context.getLocalProperty("callSite.short"));
            assertNull(context.getLocalProperty("callSite.long"));
        } finally {
            context.stop();
        }
    }

    @Test
    public void neverThrows() {
        assertFalse(PythonBridge.setCallSite(null, "x", "y"));
    }
}
