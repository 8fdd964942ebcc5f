package dev.runlink.spark.context;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/** The Airflow context in one spelling, as python/runlink/context.py's NormalizedContext. */
public final class NormalizedContext {
    public final String uid;
    public final String dagId;
    public final String dagRunId;
    /** UTC instant ("2026-11-22T00:00:00.000000Z"), or null when only a date was given. */
    public final String logicalDate;
    public final String logicalDay;
    public final boolean dateOnly;
    public final String taskId;
    /** Null means "the latest attempt". */
    public final Long tryNumber;
    public final long mapIndex;

    NormalizedContext(String uid, String dagId, String dagRunId, String logicalDate, String logicalDay,
                      String taskId, Long tryNumber, long mapIndex) {
        this.uid = uid;
        this.dagId = dagId;
        this.dagRunId = dagRunId;
        this.logicalDate = logicalDate;
        this.logicalDay = logicalDay;
        this.dateOnly = logicalDay != null && logicalDate == null;
        this.taskId = taskId;
        this.tryNumber = tryNumber;
        this.mapIndex = mapIndex;
    }

    /** The canonical string the deterministic ids are computed from. */
    public String key() {
        String[] parts = {uid, dagId, dagRunId, logicalDate, logicalDay, taskId, Long.toString(mapIndex),
            tryNumber == null ? null : tryNumber.toString()};
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < parts.length; i++) {
            if (i > 0) {
                out.append('|');
            }
            if (parts[i] != null) {
                out.append(parts[i]);
            }
        }
        return out.toString();
    }

    public boolean isAirflow() {
        return dagId != null;
    }

    /** Same keys as Python's asdict(): what the shared vectors hold under "normalized". */
    public Map<String, Object> toMap() {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("uid", uid);
        map.put("dag_id", dagId);
        map.put("dag_run_id", dagRunId);
        map.put("logical_date", logicalDate);
        map.put("logical_day", logicalDay);
        map.put("date_only", dateOnly);
        map.put("task_id", taskId);
        map.put("try_number", tryNumber);
        map.put("map_index", mapIndex);
        return map;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof NormalizedContext && key().equals(((NormalizedContext) other).key());
    }

    @Override
    public int hashCode() {
        return Objects.hashCode(key());
    }

    @Override
    public String toString() {
        return "NormalizedContext(" + key() + ")";
    }
}
