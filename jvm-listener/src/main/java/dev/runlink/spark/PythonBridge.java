package dev.runlink.spark;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the PySpark QueryExecutionListener needs from a QueryExecution, in one py4j call.
 *
 * <p>Walking a plan from Python costs a py4j round trip per node and member (about 30 ms of driver CPU per
 * query, measured); here the same {@link PlanInspector} as the JVM query listener reads it in-process and
 * returns JSON. Never throws: on any problem it returns null and the Python side falls back to its own walk.
 */
public final class PythonBridge {
    private PythonBridge() {}

    public static String describe(Object queryExecution, int maxPlanChars) {
        try {
            PlanInspector plan = PlanInspector.inspect(queryExecution, maxPlanChars);
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("inputs", plan.inputs);
            out.put("outputs", plan.outputs);
            out.put("plan_summary", plan.planSummary);
            out.put("plan_truncated", plan.planTruncated);
            out.put("planning_end_ms", planningEnd(queryExecution));
            return Json.MAPPER.writeValueAsString(out);
        } catch (Throwable t) {
            return null;
        }
    }

    /** When Spark finished planning the query (epoch ms): the anchor that matches it to its Python action. */
    static Long planningEnd(Object queryExecution) {
        Object phases = Reflect.call(Reflect.call(queryExecution, "tracker"), "phases");
        Object summary = Reflect.option(Reflect.callWith(phases, "get", "planning"));
        return Reflect.number(summary, "endTimeMs");
    }
}
