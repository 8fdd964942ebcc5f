package dev.runlink.spark;

import java.util.Map;

/** Package access to PlanInspector's helpers for the tests. */
final class PlanInspectorAccess {
    private PlanInspectorAccess() {}

    static void putSchema(Map<String, Object> ds, Object structType) {
        PlanInspector.putSchema(ds, structType);
    }
}
