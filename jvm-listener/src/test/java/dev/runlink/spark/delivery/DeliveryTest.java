package dev.runlink.spark.delivery;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.runlink.spark.TestSupport;
import dev.runlink.spark.context.Ids;
import dev.runlink.spark.context.Settings;
import dev.runlink.spark.protocol.Event;
import dev.runlink.spark.protocol.Json;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.After;
import org.junit.Test;

/** The delivery contract: never block, bounded everything, batches over real HTTP, a down or hanging tracker. */
public class DeliveryTest {
    private final List<Delivery> opened = new ArrayList<>();
    private HttpServer server;
    private ServerSocket hanging;

    @After
    public void tearDown() throws IOException {
        for (Delivery d : opened) {
            d.close();
        }
        if (server != null) {
            server.stop(0);
        }
        if (hanging != null) {
            hanging.close();
        }
    }

    private Delivery delivery(Transport transport, String... conf) {
        Delivery d = new Delivery(transport, "test", TestSupport.settings(conf), DeliveryTest::source);
        opened.add(d);
        return d;
    }

    private static Map<String, Object> source() {
        Map<String, Object> s = new LinkedHashMap<>();
        s.put("agent", "jvm");
        return s;
    }

    static Event event(int i) {
        Map<String, Object> payload = new LinkedHashMap<>();
        payload.put("job_id", i);
        payload.put("result", "succeeded");
        return new Event(Ids.randomEventId(), "spark_job.end", Json.now(), Collections.<String, String>emptyMap(),
            "local-1", null, payload);
    }

    @Test
    public void fullQueueDropsAndCountsAndNeverBlocks() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicInteger posts = new AtomicInteger();
        Transport stuck = body -> { // the sender hangs on its first batch: the queue must fill, not block
            posts.incrementAndGet();
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return new Transport.Response(202, "");
        };
        Delivery d = delivery(stuck, "spark.runlink.queueSize", "10", "spark.runlink.batchSize", "5",
            "spark.runlink.batchIntervalMs", "0");
        d.offer(event(-1));
        TestSupport.await("the sender to be stuck in a send", 5_000, () -> posts.get() == 1);
        int n = 100_000;
        int accepted = 0;
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            if (d.offer(event(i))) {
                accepted++;
            }
        }
        long perOfferNs = (System.nanoTime() - start) / n;
        assertEquals("the queue holds its capacity", 10, accepted);
        assertEquals(n - 10, d.dropped());
        assertTrue("offer must not block (" + perOfferNs + " ns/offer)", perOfferNs < 50_000);
        release.countDown();
        assertTrue("queued events still go out", d.flush(5_000));
        assertEquals(11, d.sent());
        System.out.println("figure: Delivery.offer on a full queue: " + perOfferNs + " ns (incl. building the event)");
    }

    /** A real HTTP server on a free port; answers with the given statuses in turn (then 202), records batches. */
    private List<JsonNode> serve(List<String> headers, int... statuses) throws IOException {
        List<JsonNode> batches = Collections.synchronizedList(new ArrayList<JsonNode>());
        AtomicInteger call = new AtomicInteger();
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/api/v1/events", exchange -> {
            byte[] body = readAll(exchange.getRequestBody());
            headers.add(exchange.getRequestHeaders().getFirst("Content-Encoding") + " "
                + exchange.getRequestHeaders().getFirst("Authorization"));
            int i = call.getAndIncrement();
            int status = i < statuses.length ? statuses[i] : 202;
            String answer = "{\"accepted\": 0}";
            if (status == 202) {
                batches.add(TestSupport.JSON.readTree(TestSupport.gunzip(body)));
            } else if (status == 422) {
                answer = "{\"detail\": {\"message\": \"bad\", \"index\": 1, \"field\": \"payload\"}}";
            }
            byte[] out = answer.getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(status, out.length);
            try (OutputStream os = exchange.getResponseBody()) {
                os.write(out);
            }
        });
        server.start();
        return batches;
    }

    private String serverUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private static byte[] readAll(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int n;
        while ((n = in.read(buf)) >= 0) {
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }

    private Delivery httpDelivery(String url, String... conf) throws IOException {
        Settings s = TestSupport.settings(conf);
        return delivery(new HttpTransport(url + "/api/v1/events", "t0ken", "runlink-jvm/test", s.connectTimeoutMs,
            s.readTimeoutMs), conf);
    }

    @Test
    public void sendsGzipBatchesWithTheBearerToken() throws Exception {
        List<String> headers = Collections.synchronizedList(new ArrayList<String>());
        List<JsonNode> batches = serve(headers);
        Delivery d = httpDelivery(serverUrl(), "spark.runlink.batchSize", "10", "spark.runlink.batchIntervalMs",
            "50");
        for (int i = 0; i < 25; i++) {
            assertTrue(d.offer(event(i)));
        }
        assertTrue(d.flush(5_000));
        int total = 0;
        for (JsonNode batch : batches) {
            assertTrue(batch.get("events").size() <= 10);
            total += batch.get("events").size();
        }
        assertEquals(25, total);
        assertTrue("at least three batches", batches.size() >= 3);
        for (String h : headers) {
            assertEquals("gzip Bearer t0ken", h);
        }
        assertEquals(25, d.sent());
        assertEquals(0, d.dropped());
    }

    @Test
    public void retriesServerErrorsThenDelivers() throws Exception {
        List<JsonNode> batches = serve(Collections.synchronizedList(new ArrayList<String>()), 503, 429);
        Delivery d = httpDelivery(serverUrl(), "spark.runlink.maxBackoffMs", "20");
        for (int i = 0; i < 3; i++) {
            d.offer(event(i));
        }
        TestSupport.await("delivery after two refusals", 10_000, () -> d.sent() == 3);
        assertEquals(2, d.sendErrors());
        assertEquals(0, d.dropped());
        assertEquals(3, batches.get(0).get("events").size());
    }

    @Test
    public void a422DropsTheBadEventAndSendsTheOthers() throws Exception {
        List<JsonNode> batches = serve(Collections.synchronizedList(new ArrayList<String>()), 422);
        Delivery d = httpDelivery(serverUrl(), "spark.runlink.batchIntervalMs", "200");
        for (int i = 0; i < 3; i++) {
            d.offer(event(i));
        }
        assertTrue(d.flush(5_000));
        assertEquals(1, d.dropped());
        assertEquals(2, d.sent());
        JsonNode events = batches.get(0).get("events");
        assertEquals(0, events.get(0).get("payload").get("job_id").asInt());
        assertEquals(2, events.get(1).get("payload").get("job_id").asInt());
    }

    @Test
    public void trackerDownCountsAndFlushReturnsAtOnce() throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort(); // closed again: connections are refused
        }
        Delivery d = httpDelivery("http://127.0.0.1:" + port, "spark.runlink.retryBufferEvents", "5");
        for (int i = 0; i < 20; i++) {
            assertTrue("offer never fails on a down tracker", d.offer(event(i)));
        }
        long start = System.nanoTime();
        boolean delivered = d.flush(5_000);
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertFalse(delivered);
        assertTrue("a refused connection ends the flush early (" + ms + " ms)", ms < 2_000);
        assertTrue(d.sendErrors() >= 1);
        assertEquals("the retry buffer keeps 5, the rest is counted", 15, d.dropped());
        assertEquals(5, d.pending());
        System.out.println("figure: flush against a refused connection returned in " + ms + " ms");
    }

    @Test
    public void hangingTrackerCannotHoldFlushBeyondItsBound() throws Exception {
        hanging = new ServerSocket(0, 50); // accepts TCP (backlog) and never answers
        Delivery d = httpDelivery("http://127.0.0.1:" + hanging.getLocalPort(), "spark.runlink.readTimeoutMs",
            "30000");
        for (int i = 0; i < 5; i++) {
            d.offer(event(i));
        }
        long start = System.nanoTime();
        assertFalse(d.flush(700));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue("flush waited " + ms + " ms for a 700 ms bound", ms >= 650 && ms < 1_500);
        // offers stay non-blocking while the sender is stuck reading
        long t0 = System.nanoTime();
        assertTrue(d.offer(event(99)));
        assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 100);
        System.out.println("figure: flush against a hanging tracker returned in " + ms + " ms (bound 700 ms)");
    }

    @Test
    public void aTrackerThatTimedOutGetsTheShortFlushBound() throws Exception {
        hanging = new ServerSocket(0, 50);
        Delivery d = httpDelivery("http://127.0.0.1:" + hanging.getLocalPort(), "spark.runlink.readTimeoutMs",
            "1500", "spark.runlink.failingFlushTimeoutMs", "300");
        d.offer(event(1));
        TestSupport.await("a timed-out send", 10_000, () -> d.sendErrors() >= 1);
        d.offer(event(2));
        long start = System.nanoTime();
        assertFalse(d.flush(10_000));
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        assertTrue("flush waited " + ms + " ms: bound 300 ms once an attempt timed out (read timeout 1500 ms)",
            ms >= 250 && ms < 1_200);
        assertEquals("undelivered, not dropped: still in the retry buffer or the queue", 2, d.pending());
        System.out.println("figure: flush after a timed-out attempt returned in " + ms + " ms (bound 300 ms)");
    }

    @Test
    public void aFlushThatTimedOutLeavesNoPhantomEvent() throws Exception {
        hanging = new ServerSocket(0, 50);
        Delivery d = httpDelivery("http://127.0.0.1:" + hanging.getLocalPort(), "spark.runlink.readTimeoutMs",
            "30000");
        d.offer(event(1));
        try (Socket sending = hanging.accept()) { // the sender is now waiting on the tracker's answer
            assertFalse(d.flush(100)); // its wake-up marker stays queued behind the stuck send
            assertEquals("the one event, not the flush's marker too", 1, d.pending());
            assertEquals(0, d.queueSize());
        }
    }

    @Test
    public void readTimeoutTurnsAHangIntoARetry() throws Exception {
        hanging = new ServerSocket(0, 50);
        Delivery d = httpDelivery("http://127.0.0.1:" + hanging.getLocalPort(), "spark.runlink.readTimeoutMs", "200",
            "spark.runlink.maxBackoffMs", "50");
        d.offer(event(1));
        TestSupport.await("a timed-out send", 5_000, () -> d.sendErrors() >= 1);
        assertEquals(1, d.pending());
        assertEquals(0, d.dropped());
    }
}
