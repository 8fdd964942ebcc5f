package dev.runlink.spark.delivery;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;

/**
 * POST /api/v1/events with java.net only; connect and read timeouts bound a hanging tracker. The caller names
 * itself in {@code userAgent} ({@code runlink-jvm/<version>}).
 */
public final class HttpTransport implements Transport {
    private static final int MAX_BODY = 64 * 1024;

    private final URL url;
    private final String token;
    private final String userAgent;
    private final int connectTimeoutMs;
    private final int readTimeoutMs;

    public HttpTransport(String eventsUrl, String token, String userAgent, int connectTimeoutMs, int readTimeoutMs)
            throws IOException {
        this.url = new URL(eventsUrl);
        this.token = token;
        this.userAgent = userAgent;
        this.connectTimeoutMs = connectTimeoutMs;
        this.readTimeoutMs = readTimeoutMs;
    }

    @Override
    public Response post(byte[] gzippedBatch) throws IOException {
        HttpURLConnection conn = (HttpURLConnection) url.openConnection();
        try {
            conn.setConnectTimeout(connectTimeoutMs);
            conn.setReadTimeout(readTimeoutMs);
            conn.setRequestMethod("POST");
            conn.setDoOutput(true);
            conn.setUseCaches(false);
            conn.setFixedLengthStreamingMode(gzippedBatch.length);
            conn.setRequestProperty("Content-Type", "application/json");
            conn.setRequestProperty("Content-Encoding", "gzip");
            conn.setRequestProperty("User-Agent", userAgent);
            if (token != null) {
                conn.setRequestProperty("Authorization", "Bearer " + token);
            }
            try (OutputStream out = conn.getOutputStream()) {
                out.write(gzippedBatch);
            }
            int status = conn.getResponseCode();
            InputStream in = status >= 400 ? conn.getErrorStream() : conn.getInputStream();
            return new Response(status, readCapped(in));
        } catch (IOException e) {
            conn.disconnect(); // a half-read connection must not go back to the keep-alive pool
            throw e;
        }
    }

    /** Reads the whole answer (so the connection can be reused) but keeps only its head. */
    private static String readCapped(InputStream in) throws IOException {
        if (in == null) {
            return "";
        }
        try (InputStream body = in) {
            ByteArrayOutputStream kept = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = body.read(buf)) >= 0) {
                if (kept.size() < MAX_BODY) {
                    kept.write(buf, 0, Math.min(n, MAX_BODY - kept.size()));
                }
            }
            return new String(kept.toByteArray(), StandardCharsets.UTF_8);
        }
    }
}
