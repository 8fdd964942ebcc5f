package dev.runlink.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** JSON through the Jackson that Spark ships (no runtime dependency of our own), and wire timestamps. */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();
    private static final DateTimeFormatter INSTANT = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'");

    private Json() {}

    static byte[] bytes(Object value) throws IOException {
        return MAPPER.writeValueAsBytes(value);
    }

    /** The wire spelling of an instant: UTC, microseconds, Z (python: context.format_instant). */
    static String formatInstant(LocalDateTime utc) {
        return INSTANT.format(utc);
    }

    static String formatEpochMillis(long millis) {
        return INSTANT.format(LocalDateTime.ofInstant(Instant.ofEpochMilli(millis), ZoneOffset.UTC));
    }

    static String now() {
        Instant now = Instant.now();
        return INSTANT.format(LocalDateTime.ofInstant(now, ZoneOffset.UTC));
    }

    /** Cuts a string to the schema's maxLength (counted in code points, as JSON Schema does). */
    static String cap(String text, int maxChars) {
        if (text == null || text.length() <= maxChars) {
            return text;
        }
        int end = text.offsetByCodePoints(0, Math.min(maxChars, text.codePointCount(0, text.length())));
        return text.substring(0, end);
    }
}
