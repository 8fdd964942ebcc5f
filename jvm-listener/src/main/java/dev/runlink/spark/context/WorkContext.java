package dev.runlink.spark.context;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Airflow context a task sets on the work it causes on a shared application: the value of the local property
 * (or session SQL conf) {@code spark.runlink.context} that {@code runlink.spark.track_session} writes, in the
 * form {@code dag_id=etl&task_id=load&try_number=1} with each value percent-encoded (no commas, no secrets: only
 * the raw context keys). python/runlink/spark/job_context.py writes it.
 */
public final class WorkContext {
    /** The local property / session SQL conf that carries it. */
    public static final String PROPERTY = "spark.runlink.context";
    /** A longer value is not runlink's (eight capped keys fit well below it). */
    static final int MAX_CHARS = 4096;

    private static String lastText;
    private static Map<String, String> lastParsed;

    private WorkContext() {}

    /**
     * The raw context (keys of {@link ContextNormalizer#ENV_KEYS}' values, capped like the driver's), or null
     * when the text is absent, malformed, names an unknown key or has no dag_id. The last answer is kept: the
     * jobs of one task repeat one value, and they then share one map.
     */
    public static synchronized Map<String, String> parse(String text) {
        if (text == null || text.isEmpty() || text.length() > MAX_CHARS) {
            return null;
        }
        if (text.equals(lastText)) {
            return lastParsed;
        }
        Map<String, String> parsed = parseFresh(text);
        lastText = text;
        lastParsed = parsed;
        return parsed;
    }

    private static Map<String, String> parseFresh(String text) {
        Map<String, String> raw = new LinkedHashMap<>();
        for (String pair : text.split("&", -1)) {
            int eq = pair.indexOf('=');
            if (eq <= 0) {
                return null;
            }
            String key = pair.substring(0, eq);
            if (!ContextNormalizer.ENV_KEYS.containsValue(key) || raw.containsKey(key)) {
                return null;
            }
            String value = percentDecode(pair.substring(eq + 1));
            if (value == null) {
                return null;
            }
            value = ContextNormalizer.clean(value);
            if (value != null) {
                raw.put(key, value);
            }
        }
        if (raw.get("dag_id") == null) {
            return null;
        }
        Settings.cap(raw);
        return Collections.unmodifiableMap(raw);
    }

    /** RFC 3986 percent-decoding as UTF-8 ('+' stays '+'); null for a malformed escape, raw non-ASCII or bad UTF-8. */
    static String percentDecode(String text) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '%') {
                if (i + 2 >= text.length()) {
                    return null;
                }
                int hi = Character.digit(text.charAt(i + 1), 16);
                int lo = Character.digit(text.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) {
                    return null;
                }
                out.write(hi * 16 + lo);
                i += 2;
            } else if (c < 0x80) {
                out.write(c);
            } else {
                return null; // the encoder escapes everything outside ASCII
            }
        }
        byte[] bytes = out.toByteArray();
        String decoded = new String(bytes, StandardCharsets.UTF_8);
        return java.util.Arrays.equals(decoded.getBytes(StandardCharsets.UTF_8), bytes) ? decoded : null;
    }
}
