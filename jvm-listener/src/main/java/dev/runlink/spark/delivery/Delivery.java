package dev.runlink.spark.delivery;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.zip.GZIPOutputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gets events to the tracker without ever holding up Spark: {@link #offer} is a non-blocking put into a bounded
 * queue (full: the event is dropped and counted); one daemon thread batches (count, bytes, time), gzips, POSTs,
 * retries with capped exponential backoff, and keeps failed batches in a bounded retry buffer.
 */
public final class Delivery {
    private static final Logger LOG = LoggerFactory.getLogger(Delivery.class);
    private static final Object FLUSH = new Object(); // wakes an idle sender
    private static final long IDLE_WAIT_MS = 1_000;
    private static final long FIRST_BACKOFF_MS = 200;
    private static final byte[] HEAD = "{\"events\":[".getBytes(StandardCharsets.UTF_8);
    private static final byte[] TAIL = "]}".getBytes(StandardCharsets.UTF_8);

    private final Transport transport;
    private final String target; // for messages; never holds the token
    private final int batchSize;
    private final int batchBytes;
    private final long batchIntervalMs;
    private final int retryBufferEvents;
    private final long maxBackoffMs;
    private final long failingFlushTimeoutMs;
    private final Supplier<Map<String, Object>> sourceSupplier;
    private Map<String, Object> source; // sender thread only: built there, off Spark's threads (host lookup)

    private final ArrayBlockingQueue<Object> queue;
    // FLUSH markers in the queue: not events, so pending() and queueSize() leave them out (a flush that returned
    // while the sender was busy left its marker behind, and pending() counted one event too many)
    private final AtomicInteger flushMarkers = new AtomicInteger();
    private final ArrayDeque<byte[]> retry = new ArrayDeque<>(); // sender thread only
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong dropped = new AtomicLong();
    private final AtomicLong sendErrors = new AtomicLong();
    private volatile int retrySize;
    private volatile boolean failing; // the latest attempt failed (refused, timed out, 408/429/5xx)
    private volatile int inFlight; // events of the batch being sent

    private final Object flushLock = new Object();
    private long flushRequested; // guarded by flushLock
    private long flushCompleted; // guarded by flushLock
    private boolean lastFlushOk; // guarded by flushLock

    private final Thread thread;
    private volatile boolean closed;
    private final Once unreachable = new Once();
    private final Once refused = new Once();
    private final Once rejected = new Once();
    private final Once failed = new Once();

    public Delivery(Transport transport, String target, Settings s, Supplier<Map<String, Object>> source) {
        this.transport = transport;
        this.target = target;
        this.batchSize = s.batchSize;
        this.batchBytes = s.batchBytes;
        this.batchIntervalMs = s.batchIntervalMs;
        this.retryBufferEvents = s.retryBufferEvents;
        this.maxBackoffMs = s.maxBackoffMs;
        this.failingFlushTimeoutMs = s.failingFlushTimeoutMs;
        this.sourceSupplier = source;
        this.queue = new ArrayBlockingQueue<>(s.queueCapacity);
        this.thread = new Thread(this::run, "runlink-sender");
        thread.setDaemon(true);
        thread.start();
    }

    /** Never blocks, never throws: a full queue (or a closed sender) drops the event and counts it. */
    public boolean offer(Event event) {
        if (closed || !queue.offer(event)) {
            dropped.incrementAndGet();
            return false;
        }
        return true;
    }

    /**
     * Sends everything queued so far, waiting at most {@code timeoutMs}, or at most failingFlushTimeoutMs while the
     * latest attempt failed (a tracker that hangs until the read timeout would otherwise hold the caller, the
     * application's end, for the whole bound). Returns true when all was delivered; false at the deadline, or as
     * soon as an attempt fails (a down tracker does not cost the full timeout).
     */
    public boolean flush(long timeoutMs) {
        if (failing) {
            timeoutMs = Math.min(timeoutMs, failingFlushTimeoutMs);
        }
        long gen;
        synchronized (flushLock) {
            gen = ++flushRequested;
            flushLock.notifyAll(); // ends a backoff wait
        }
        // a full queue wakes the sender anyway. Counted after the offer: until then pending() counts the marker as an
        // event, which errs on the side of "not yet delivered", never the other way
        if (queue.offer(FLUSH)) {
            flushMarkers.incrementAndGet();
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        synchronized (flushLock) {
            long left;
            while (flushCompleted < gen && (left = deadline - System.nanoTime()) > 0) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(flushLock, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            return flushCompleted >= gen && lastFlushOk;
        }
    }

    /** Stops the sender thread (tests, and a JVM that discards this channel). Pending events are abandoned. */
    public void close() {
        closed = true;
        synchronized (flushLock) {
            flushLock.notifyAll();
        }
        thread.interrupt();
    }

    public long sent() {
        return sent.get();
    }

    public long dropped() {
        return dropped.get();
    }

    public long sendErrors() {
        return sendErrors.get();
    }

    /** Events accepted but not yet delivered (queued, being sent, or waiting for a retry). */
    public long pending() {
        return queueSize() + retrySize + inFlight;
    }

    public String target() {
        return target;
    }

    public int queueSize() {
        return Math.max(0, queue.size() - flushMarkers.get());
    }

    private void run() {
        List<byte[]> batch = new ArrayList<>();
        long backoff = 0;
        while (!closed) {
            try {
                fill(batch);
                long gen;
                synchronized (flushLock) {
                    gen = flushRequested > flushCompleted ? flushRequested : 0;
                }
                if (batch.isEmpty()) {
                    if (gen > 0 && pending() == 0) {
                        completeFlush(gen, true);
                    }
                    continue;
                }
                inFlight = batch.size();
                List<byte[]> again;
                try {
                    again = deliver(batch);
                } finally {
                    inFlight = 0;
                }
                if (again.isEmpty()) {
                    backoff = 0;
                    if (gen > 0 && pending() == 0) {
                        completeFlush(gen, true);
                    }
                } else {
                    keepForRetry(again);
                    if (gen > 0) {
                        completeFlush(gen, false); // do not hold the application's exit on a failing tracker
                    }
                    backoff = backoff == 0 ? FIRST_BACKOFF_MS : Math.min(maxBackoffMs, backoff * 2);
                    waitBackoff(backoff + ThreadLocalRandom.current().nextLong(backoff / 4 + 1));
                }
                batch.clear();
            } catch (InterruptedException e) {
                if (closed) {
                    return;
                }
            } catch (Throwable t) { // the sender must outlive any bug: drop what it held and go on
                dropped.addAndGet(batch.size());
                batch.clear();
                failed.warn(LOG, "runlink: sender error, events dropped", t);
            }
        }
    }

    /** Retry buffer first, then the queue; waits for a first event, then at most batchIntervalMs for more. */
    private void fill(List<byte[]> batch) throws InterruptedException {
        long bytes = 0;
        while (batch.size() < batchSize && bytes < batchBytes && !retry.isEmpty()) {
            byte[] event = retry.pollFirst();
            batch.add(event);
            bytes += event.length;
        }
        retrySize = retry.size();
        boolean urgent = flushPending();
        long deadline = 0;
        while (batch.size() < batchSize && bytes < batchBytes) {
            Object item;
            if (urgent) {
                item = queue.poll();
            } else if (batch.isEmpty()) {
                item = queue.poll(IDLE_WAIT_MS, TimeUnit.MILLISECONDS);
            } else {
                if (deadline == 0) {
                    deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(batchIntervalMs);
                }
                long left = deadline - System.nanoTime();
                item = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : null;
            }
            if (item == null) {
                return;
            }
            if (item == FLUSH) {
                flushMarkers.decrementAndGet();
                urgent = true;
                continue;
            }
            byte[] json = serialize((Event) item);
            if (json != null) {
                batch.add(json);
                bytes += json.length;
            }
        }
    }

    private byte[] serialize(Event event) {
        try {
            if (source == null) {
                source = sourceSupplier.get();
            }
            byte[] json = Json.bytes(event.toWire(source));
            if (json.length > batchBytes) {
                dropped.incrementAndGet();
                failed.warn(LOG, "runlink: event over " + batchBytes + " bytes dropped: " + event.type, null);
                return null;
            }
            return json;
        } catch (IOException | RuntimeException e) {
            dropped.incrementAndGet();
            failed.warn(LOG, "runlink: event not serializable, dropped: " + event.type, e);
            return null;
        }
    }

    /**
     * One batch to the tracker. Returns the events to retry later (connection error, timeout, 408, 429, 5xx);
     * empty when the batch is settled: delivered, or refused for good and counted as dropped.
     */
    private List<byte[]> deliver(List<byte[]> batch) throws IOException {
        List<byte[]> rest = batch;
        while (!rest.isEmpty()) {
            Transport.Response response;
            try {
                response = transport.post(gzip(rest));
            } catch (IOException e) {
                sendErrors.incrementAndGet();
                failing = true;
                unreachable.warn(LOG, "runlink: tracker " + target + " unreachable (" + e
                    + "); events wait in a bounded buffer and are retried", null);
                return rest;
            }
            int status = response.status;
            failing = status == 408 || status == 429 || status >= 500;
            if (status >= 200 && status < 300) {
                sent.addAndGet(rest.size());
                return Collections.emptyList();
            }
            if (failing) {
                sendErrors.incrementAndGet();
                return rest;
            }
            int bad = status == 422 ? rejectedIndex(response.body) : -1;
            if (bad >= 0 && bad < rest.size()) {
                // a 422 stores nothing of the batch: drop the one bad event, send the others again
                dropped.incrementAndGet();
                rejected.warn(LOG, "runlink: tracker rejected an event: " + Json.cap(response.body, 500), null);
                rest = new ArrayList<>(rest);
                rest.remove(bad);
                continue;
            }
            if (status == 413 && rest.size() > 1) {
                int half = rest.size() / 2;
                List<byte[]> again = new ArrayList<>(deliver(new ArrayList<>(rest.subList(0, half))));
                again.addAll(deliver(new ArrayList<>(rest.subList(half, rest.size()))));
                return again;
            }
            dropped.addAndGet(rest.size());
            refused.warn(LOG, "runlink: tracker " + target + " refused a batch with HTTP " + status
                + (status == 401 || status == 403 ? " (check spark.runlink.token / RUNLINK_TOKEN)" : "")
                + ": " + Json.cap(response.body, 500), null);
            return Collections.emptyList();
        }
        return Collections.emptyList();
    }

    private static int rejectedIndex(String body) {
        try {
            JsonNode index = Json.MAPPER.readTree(body).path("detail").path("index");
            return index.canConvertToInt() ? index.asInt() : -1;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    private static byte[] gzip(List<byte[]> events) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out, 8192)) {
            gz.write(HEAD);
            for (int i = 0; i < events.size(); i++) {
                if (i > 0) {
                    gz.write(',');
                }
                gz.write(events.get(i));
            }
            gz.write(TAIL);
        }
        return out.toByteArray();
    }

    /** Back to the head of the retry buffer, in order; beyond its bound the newest are dropped and counted. */
    private void keepForRetry(List<byte[]> batch) {
        for (int i = batch.size() - 1; i >= 0; i--) {
            retry.addFirst(batch.get(i));
        }
        while (retry.size() > retryBufferEvents) {
            retry.pollLast();
            dropped.incrementAndGet();
        }
        retrySize = retry.size();
    }

    private boolean flushPending() {
        synchronized (flushLock) {
            return flushRequested > flushCompleted;
        }
    }

    private void completeFlush(long gen, boolean ok) {
        synchronized (flushLock) {
            if (gen > flushCompleted) {
                flushCompleted = gen;
                lastFlushOk = ok;
            }
            flushLock.notifyAll();
        }
    }

    /** Sleeps the backoff, cut short by a flush request or close(). */
    private void waitBackoff(long ms) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        synchronized (flushLock) {
            long left;
            while (!closed && flushRequested == flushCompleted && (left = deadline - System.nanoTime()) > 0) {
                TimeUnit.NANOSECONDS.timedWait(flushLock, left);
            }
        }
    }
}
