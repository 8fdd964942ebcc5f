package dev.runlink.spark.protocol;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** JSON through the Jackson that Spark ships (no runtime dependency of our own), and wire timestamps. */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper();
    private static final DateTimeFormatter INSTANT = DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSSSS'Z'");

    private Json() {}

    public static byte[] bytes(Object value) throws IOException {
        return MAPPER.writeValueAsBytes(value);
    }

    /** The wire spelling of an instant: UTC, microseconds, Z (python: context.format_instant). */
    public static String formatInstant(LocalDateTime utc) {
        if (utc.getYear() < 1000 || utc.getYear() > 9999) {
            return INSTANT.format(utc);
        }
        // by hand: several times faster than DateTimeFormatter, and this runs on Spark's listener thread
        char[] out = "0000-00-00T00:00:00.000000Z".toCharArray();
        digits(out, 0, utc.getYear(), 4);
        digits(out, 5, utc.getMonthValue(), 2);
        digits(out, 8, utc.getDayOfMonth(), 2);
        digits(out, 11, utc.getHour(), 2);
        digits(out, 14, utc.getMinute(), 2);
        digits(out, 17, utc.getSecond(), 2);
        digits(out, 20, utc.getNano() / 1000, 6);
        return new String(out);
    }

    private static void digits(char[] out, int at, int value, int width) {
        for (int i = at + width - 1; i >= at; i--) {
            out[i] = (char) ('0' + value % 10);
            value /= 10;
        }
    }

    public static String formatEpochMillis(long millis) {
        return formatInstant(LocalDateTime.ofInstant(Instant.ofEpochMilli(millis), ZoneOffset.UTC));
    }

    public static String now() {
        return formatInstant(LocalDateTime.ofInstant(Instant.now(), ZoneOffset.UTC));
    }

    /** Cuts a string to the schema's maxLength (counted in code points, as JSON Schema does). */
    public static String cap(String text, int maxChars) {
        if (text == null || text.length() <= maxChars) {
            return text;
        }
        int end = text.offsetByCodePoints(0, Math.min(maxChars, text.codePointCount(0, text.length())));
        return text.substring(0, end);
    }
}
