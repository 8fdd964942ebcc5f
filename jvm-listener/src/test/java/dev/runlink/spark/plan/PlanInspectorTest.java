package dev.runlink.spark.plan;

import static org.junit.Assert.assertEquals;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * PlanInspector's package-private helpers (the schema cap). Its walk over the plan shapes of Spark 3.5 and 4.x is
 * checked through the query listener's reports (QueryListenerTest, with FakePlans).
 */
public class PlanInspectorTest {
    @Test
    public void capsTheSchema() {
        Map<String, Object> ds = new HashMap<>();
        PlanInspector.putSchema(ds, FakePlans.schema(PlanInspector.MAX_SCHEMA_FIELDS + 5));
        assertEquals(PlanInspector.MAX_SCHEMA_FIELDS, ((List<?>) ds.get("schema")).size());
        assertEquals(true, ds.get("schema_truncated"));
    }
}
