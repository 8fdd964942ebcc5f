package dev.runlink.spark.protocol;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** One protocol-v1 event, immutable; built cheaply on Spark's thread, serialized by the sender. */
public final class Event {
    /** The event type, for the sender's messages about an event it drops. */
    public final String type;
    private final String id;
    private final String time;
    private final Map<String, String> context;
    private final String appId;
    private final String attemptId;
    private final Map<String, Object> payload;
    private final Map<String, String> workContext;

    public Event(String id, String type, String time, Map<String, String> context, String appId, String attemptId,
          Map<String, Object> payload) {
        this(id, type, time, context, appId, attemptId, payload, null);
    }

    /**
     * {@code workContext}: on an application shared by several Airflow tasks, the raw context of the task whose
     * job, stage or query this is (the wire's optional {@code work_context}); null for the application's own.
     */
    public Event(String id, String type, String time, Map<String, String> context, String appId, String attemptId,
          Map<String, Object> payload, Map<String, String> workContext) {
        this.workContext = workContext;
        this.id = id;
        this.type = type;
        this.time = time;
        this.context = context;
        this.appId = appId;
        this.attemptId = attemptId;
        this.payload = Collections.unmodifiableMap(payload);
    }

    /** The wire form; {@code source} is shared by all events of this JVM. */
    public Map<String, Object> toWire(Map<String, Object> source) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("v", 1);
        out.put("id", id);
        out.put("type", type);
        out.put("time", time);
        out.put("source", source);
        if (context != null && !context.isEmpty()) {
            out.put("context", context);
        }
        if (appId != null) {
            Map<String, Object> spark = new LinkedHashMap<>();
            spark.put("app_id", appId);
            spark.put("attempt_id", attemptId);
            out.put("spark", spark);
        }
        if (workContext != null && !workContext.isEmpty()) {
            out.put("work_context", workContext);
        }
        out.put("payload", payload);
        return out;
    }

    @Override
    public String toString() {
        return "Event(" + type + " " + id + ")";
    }
}
