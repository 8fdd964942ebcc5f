package dev.runlink.spark;

import dev.runlink.spark.context.Ids;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.delivery.Delivery;
import dev.runlink.spark.delivery.HttpTransport;
import dev.runlink.spark.delivery.Transport;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the listeners of one JVM share for one tracker: the delivery channel and the worker that walks query
 * plans. Both listeners (and later SparkContexts in the same JVM) reuse it.
 */
final class Agent {
    private static final Logger LOG = LoggerFactory.getLogger(Agent.class);
    static final String VERSION = version();
    private static final ConcurrentHashMap<String, Agent> AGENTS = new ConcurrentHashMap<>();

    final Delivery delivery;
    private final ThreadPoolExecutor worker;
    private final AtomicLong workDropped = new AtomicLong();

    Agent(Settings settings, Transport transport) {
        this.delivery = new Delivery(transport, settings.url, settings, Agent::source);
        this.worker = new ThreadPoolExecutor(1, 1, 30, TimeUnit.SECONDS,
            new ArrayBlockingQueue<Runnable>(settings.planQueueCapacity), runnable -> {
                Thread t = new Thread(runnable, "runlink-plan-worker");
                t.setDaemon(true);
                return t;
            });
        worker.allowCoreThreadTimeOut(true);
    }

    /** The JVM's agent for these settings' tracker, created on first use. */
    static Agent forSettings(Settings settings) {
        return AGENTS.computeIfAbsent(settings.deliveryKey(), key -> {
            try {
                return new Agent(settings, new HttpTransport(settings.eventsUrl(), settings.token,
                    "runlink-jvm/" + VERSION, settings.connectTimeoutMs, settings.readTimeoutMs));
            } catch (java.io.IOException e) {
                throw new IllegalArgumentException("runlink: bad tracker URL " + settings.url, e);
            }
        });
    }

    void emit(Event event) {
        delivery.offer(event);
    }

    /** Runs heavy work (plan walking) off Spark's threads; a full work queue drops the work and counts it. */
    boolean submit(Runnable work) {
        try {
            worker.execute(work);
            return true;
        } catch (RejectedExecutionException e) {
            workDropped.incrementAndGet();
            return false;
        }
    }

    long dropped() {
        return delivery.dropped() + workDropped.get();
    }

    Event health(Map<String, String> context, String appId, String attemptId, String reason) {
        Map<String, Object> payload = new LinkedHashMap<>();
        payload.put("events_sent", delivery.sent());
        payload.put("events_dropped", dropped());
        payload.put("queue_size", (long) delivery.queueSize());
        payload.put("send_errors", delivery.sendErrors());
        payload.put("reason", reason);
        return new Event(Ids.randomEventId(), "agent_health", Json.now(), context, appId, attemptId, payload);
    }

    /** At application end: report the counters, then wait (bounded) for delivery. Logs what stays undelivered. */
    boolean finish(Map<String, String> context, String appId, String attemptId, long timeoutMs) {
        emit(health(context, appId, attemptId, "application end"));
        long start = System.nanoTime();
        boolean delivered = delivery.flush(timeoutMs);
        if (!delivered) {
            LOG.warn("runlink: {} events not delivered to {} within {} ms (sent {}, dropped {}, send errors {})",
                delivery.pending(), delivery.target(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
                delivery.sent(), dropped(), delivery.sendErrors());
        }
        return delivered;
    }

    private static Map<String, Object> source() {
        Map<String, Object> source = new LinkedHashMap<>();
        source.put("agent", "jvm");
        source.put("version", VERSION);
        String host = null;
        Long pid = null;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            // an unresolvable host name leaves it unknown
        }
        try {
            String name = ManagementFactory.getRuntimeMXBean().getName(); // "pid@host" on HotSpot and J9
            pid = Long.parseLong(name.substring(0, name.indexOf('@')));
        } catch (RuntimeException e) {
            // unknown pid format
        }
        source.put("host", Json.cap(host, 255));
        source.put("pid", pid);
        return Collections.unmodifiableMap(source);
    }

    private static String version() {
        String v = Agent.class.getPackage() == null ? null : Agent.class.getPackage().getImplementationVersion();
        return v == null ? "0.0.0-dev" : v;
    }
}
