package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.Test;

/** PythonBridge.describe: the PySpark listener's one-call plan report equals what PlanInspector reads. */
public class PythonBridgeTest {
    @Test
    public void describesInputsOutputsAndPlan() throws Exception {
        JsonNode doc = Json.MAPPER.readTree(PythonBridge.describe(FakePlans.v1Write(), 16384));
        assertEquals(1, doc.get("inputs").size());
        assertEquals("file:/data/a", doc.get("inputs").get(0).get("path").asText());
        assertEquals(150, doc.get("inputs").get(0).get("rows").asLong());
        assertEquals(1, doc.get("outputs").size());
        assertTrue(doc.get("plan_summary").asText().length() > 0);
        assertTrue(doc.has("plan_truncated") && doc.has("planning_end_ms"));
    }

    @Test
    public void capsThePlan() throws Exception {
        JsonNode doc = Json.MAPPER.readTree(PythonBridge.describe(FakePlans.v1Write(), 5));
        assertEquals(5, doc.get("plan_summary").asText().length());
        assertTrue(doc.get("plan_truncated").asBoolean());
    }

    @Test
    public void neverThrows() throws Exception {
        JsonNode doc = Json.MAPPER.readTree(PythonBridge.describe(new Object(), 100));
        assertEquals(0, doc.get("inputs").size());
        assertTrue(doc.get("planning_end_ms").isNull());
        assertNull(PythonBridge.planningEnd(null));
    }
}
