package dev.runlink.spark.context;

import dev.runlink.spark.protocol.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * What the listeners need, resolved by DESIGN.md's precedence: Spark conf ({@code spark.runlink.*}, then
 * {@code spark.env.<NAME>}), then the driver's environment, then an alias (DBND__*) when the primary is unset,
 * then $RUNLINK_HOME/token, then defaults.
 */
public final class Settings {
    public static final String DEFAULT_URL = "http://127.0.0.1:8686";
    static final String ENV_PREFIX = "spark.env.";
    private static final Map<String, Integer> CONTEXT_CAPS = new HashMap<>();

    static {
        for (String key : new String[] {"dag_id", "dag_run_id", "task_id", "uid"}) {
            CONTEXT_CAPS.put(key, 250);
        }
        CONTEXT_CAPS.put("execution_date", 64);
        CONTEXT_CAPS.put("logical_date", 64);
        CONTEXT_CAPS.put("try_number", 16);
        CONTEXT_CAPS.put("map_index", 16);
    }

    public final String url;
    /** Secret: never logged. */
    public final String token;
    public final boolean tracking;
    /** Raw Airflow context (keys dag_id, execution_date, ...), empty outside Airflow. */
    public final Map<String, String> context;
    public final int queueCapacity;
    public final int batchSize;
    public final int batchBytes;
    public final long batchIntervalMs;
    public final long flushTimeoutMs;
    /** The flush bound while the tracker's latest attempt failed: a hanging tracker must not hold the exit long. */
    public final long failingFlushTimeoutMs;
    public final int connectTimeoutMs;
    public final int readTimeoutMs;
    public final int retryBufferEvents;
    public final long maxBackoffMs;
    public final int maxPlanChars;
    public final int planQueueCapacity;

    private Settings(Map<String, String> conf, Map<String, String> env) {
        String home = lookup(conf, env, null, "RUNLINK_HOME");
        this.url = trimSlash(orDefault(lookup(conf, env, "spark.runlink.url", "RUNLINK_URL",
            "DBND__CORE__DATABAND_URL"), DEFAULT_URL));
        String explicitToken = lookup(conf, env, "spark.runlink.token", "RUNLINK_TOKEN",
            "DBND__CORE__DATABAND_ACCESS_TOKEN");
        this.token = explicitToken != null ? explicitToken : readToken(home, env);
        this.tracking = parseBool(lookup(conf, env, "spark.runlink.tracking", "RUNLINK_TRACKING", "DBND__TRACKING"));
        this.context = Collections.unmodifiableMap(resolveContext(conf, env));
        this.queueCapacity = intConf(conf, "spark.runlink.queueSize", 5_000, 10);
        this.batchSize = intConf(conf, "spark.runlink.batchSize", 500, 1);
        this.batchBytes = intConf(conf, "spark.runlink.batchBytes", 2 * 1024 * 1024, 1024);
        this.batchIntervalMs = intConf(conf, "spark.runlink.batchIntervalMs", 500, 0);
        this.flushTimeoutMs = intConf(conf, "spark.runlink.flushTimeoutMs", 5_000, 0);
        this.failingFlushTimeoutMs = intConf(conf, "spark.runlink.failingFlushTimeoutMs", 1_000, 0);
        this.connectTimeoutMs = intConf(conf, "spark.runlink.connectTimeoutMs", 2_000, 1);
        this.readTimeoutMs = intConf(conf, "spark.runlink.readTimeoutMs", 5_000, 1);
        this.retryBufferEvents = intConf(conf, "spark.runlink.retryBufferEvents", 2_000, 0);
        this.maxBackoffMs = intConf(conf, "spark.runlink.maxBackoffMs", 30_000, 1);
        this.maxPlanChars = intConf(conf, "spark.runlink.maxPlanChars", 64 * 1024, 0);
        this.planQueueCapacity = intConf(conf, "spark.runlink.planQueueSize", 64, 1);
    }

    public static Settings resolve(Map<String, String> sparkConf, Map<String, String> env) {
        return new Settings(sparkConf == null ? Collections.<String, String>emptyMap() : sparkConf,
            env == null ? Collections.<String, String>emptyMap() : env);
    }

    /** From the driver's Spark conf (as key/value pairs) and this process's environment. */
    public static Settings fromSparkConf(Map<String, String> sparkConf) {
        return resolve(sparkConf, System.getenv());
    }

    public String eventsUrl() {
        return url + "/api/v1/events";
    }

    boolean hasToken() {
        return token != null;
    }

    /** Identity of the delivery channel: listeners in one JVM with equal keys share one sender. */
    public String deliveryKey() {
        return url + "\n" + Objects.hashCode(token) + "\n" + tracking;
    }

    /**
     * The context comes as a whole from one source: the Spark conf when it carries any spark.env.AIRFLOW_CTX_*
     * (what runlink's injection sets, and the only way in cluster mode), else the driver's environment. Mixing
     * the two could join values of two different tasks.
     */
    static Map<String, String> resolveContext(Map<String, String> conf, Map<String, String> env) {
        Map<String, String> raw = ContextNormalizer.fromEnv(conf, ENV_PREFIX);
        if (raw.isEmpty()) {
            raw = ContextNormalizer.fromEnv(env, "");
        }
        cap(raw);
        return raw;
    }

    /** The schema's caps on a raw context, in place: one long value must not sink a batch. */
    static void cap(Map<String, String> raw) {
        for (Map.Entry<String, String> e : raw.entrySet()) {
            e.setValue(Json.cap(e.getValue(), CONTEXT_CAPS.get(e.getKey())));
        }
    }

    /** spark.runlink.* key, then spark.env.NAME, then $NAME, then each alias the same way. */
    static String lookup(Map<String, String> conf, Map<String, String> env, String confKey, String... names) {
        String value = confKey == null ? null : nonBlank(conf.get(confKey));
        for (int i = 0; value == null && i < names.length; i++) {
            value = nonBlank(conf.get(ENV_PREFIX + names[i]));
            if (value == null) {
                value = nonBlank(env.get(names[i]));
            }
        }
        return value;
    }

    private static String readToken(String home, Map<String, String> env) {
        Path dir;
        if (home != null) {
            dir = Paths.get(home.startsWith("~/") ? System.getProperty("user.home") + home.substring(1) : home);
        } else {
            dir = Paths.get(System.getProperty("user.home"), ".runlink");
        }
        try {
            return nonBlank(new String(Files.readAllBytes(dir.resolve("token")), StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException e) {
            return null; // no token file: the tracker may not need one (local use)
        }
    }

    /** true/false like runlink.config.parse_bool; an unreadable value keeps tracking on (Python would raise). */
    static boolean parseBool(String value) {
        if (value == null) {
            return true;
        }
        String text = value.trim().toLowerCase(Locale.ROOT);
        switch (text) {
            case "0": case "false": case "no": case "off": case "n": case "f":
                return false;
            default:
                return true;
        }
    }

    private static int intConf(Map<String, String> conf, String key, int fallback, int min) {
        String value = nonBlank(conf.get(key));
        if (value == null) {
            return fallback;
        }
        try {
            return Math.max(min, Integer.parseInt(value));
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    private static String nonBlank(String value) {
        if (value == null) {
            return null;
        }
        String text = value.trim();
        return text.isEmpty() ? null : text;
    }

    private static String orDefault(String value, String fallback) {
        return value == null ? fallback : value;
    }

    private static String trimSlash(String url) {
        String out = url;
        while (out.endsWith("/")) {
            out = out.substring(0, out.length() - 1);
        }
        return out;
    }

    @Override
    public String toString() { // the token never shows
        return "Settings(url=" + url + ", tracking=" + tracking + ", token=" + (token == null ? "unset" : "set")
            + ", context=" + context + ")";
    }
}
