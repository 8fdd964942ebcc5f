package dev.runlink.spark;

import dev.runlink.spark.context.Settings;
import dev.runlink.spark.streaming.StreamingListener;
import dev.runlink.spark.streaming.StreamingQueries;
import java.util.Collections;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.spark.SparkConf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reports Structured Streaming queries
 * ({@code spark.sql.streaming.streamingQueryListeners=dev.runlink.spark.RunlinkStreamingListener}).
 *
 * <p>Spark builds this class by name for every session; all it adds to
 * {@link dev.runlink.spark.streaming.StreamingListener} is the JVM's agent, which only this package can hand out.
 * The aggregation interval is {@code spark.runlink.streaming.intervalSeconds} (default 30).
 */
public class RunlinkStreamingListener extends StreamingListener {
    private static final Logger LOG = LoggerFactory.getLogger(RunlinkStreamingListener.class);
    static final String INTERVAL_KEY = "spark.runlink.streaming.intervalSeconds";
    static final long DEFAULT_INTERVAL_S = 30;

    public RunlinkStreamingListener(SparkConf sparkConf) {
        super(queries(sparkConf));
    }

    public RunlinkStreamingListener() {
        super(queries(null));
    }

    /** For tests: explicit conf, the agent to report to. */
    RunlinkStreamingListener(Map<String, String> conf, Agent agent) {
        super(queries(conf, Settings.resolve(conf, Collections.<String, String>emptyMap()), agent));
    }

    /** For tests: explicit conf, the agent, the starting task's context as the query's thread would give it. */
    RunlinkStreamingListener(Map<String, String> conf, Agent agent, Supplier<Map<String, String>> workContext) {
        super(queries(conf, Settings.resolve(conf, Collections.<String, String>emptyMap()), agent), workContext);
    }

    /** The aggregator reporting to this conf's tracker; null (listener off) when tracking is off or on any error. */
    private static StreamingQueries queries(SparkConf sparkConf) {
        try {
            Map<String, String> conf = SparkConfs.toMap(sparkConf != null ? sparkConf : SparkConfs.active());
            Settings settings = Settings.fromSparkConf(conf);
            if (!settings.tracking) {
                return null;
            }
            return queries(conf, settings, Agent.forSettings(settings));
        } catch (Throwable t) {
            LOG.warn("runlink: streaming listener disabled; queries run unaffected", t);
            return null;
        }
    }

    static StreamingQueries queries(Map<String, String> conf, Settings settings, Agent agent) {
        return new StreamingQueries(agent::emit, settings.context, conf.get("spark.app.id"),
            conf.get("spark.app.attempt.id"), intervalMs(conf.get(INTERVAL_KEY)), System::currentTimeMillis);
    }

    /** Seconds, at least 1; an unreadable value keeps the default. */
    static long intervalMs(String seconds) {
        long value = DEFAULT_INTERVAL_S;
        if (seconds != null) {
            try {
                value = Math.max(1, Long.parseLong(seconds.trim()));
            } catch (NumberFormatException e) {
                LOG.warn("runlink: {}={} is not a number of seconds; using {}", INTERVAL_KEY, seconds, value);
            }
        }
        return value * 1000;
    }
}
