package dev.runlink.spark.context;

import dev.runlink.spark.protocol.Json;
import java.time.DateTimeException;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Normalizes a raw Airflow context exactly as python/runlink/context.py does; the shared vectors in
 * tests/vectors/context_normalization.json keep both implementations equal.
 */
public final class ContextNormalizer {
    /** AIRFLOW_CTX_* variable to raw context key, in the order Python declares them. */
    public static final Map<String, String> ENV_KEYS;

    static {
        Map<String, String> keys = new LinkedHashMap<>();
        keys.put("AIRFLOW_CTX_DAG_ID", "dag_id");
        keys.put("AIRFLOW_CTX_EXECUTION_DATE", "execution_date");
        keys.put("AIRFLOW_CTX_LOGICAL_DATE", "logical_date");
        keys.put("AIRFLOW_CTX_DAG_RUN_ID", "dag_run_id");
        keys.put("AIRFLOW_CTX_TASK_ID", "task_id");
        keys.put("AIRFLOW_CTX_TRY_NUMBER", "try_number");
        keys.put("AIRFLOW_CTX_MAP_INDEX", "map_index");
        keys.put("AIRFLOW_CTX_UID", "uid");
        ENV_KEYS = Collections.unmodifiableMap(keys);
    }

    private static final Pattern DATE = Pattern.compile("^(\\d{4})-?(\\d{2})-?(\\d{2})$");
    private static final Pattern TIMESTAMP = Pattern.compile(
        "^(\\d{4})-?(\\d{2})-?(\\d{2})[T ](\\d{2}):?(\\d{2}):?(\\d{2})(?:[.,](\\d{1,9}))?"
            + "\\s*(Z|z|UTC|[+-]\\d{2}(?::?\\d{2})?)?$");
    private static final long DAY_SECONDS = 86_400L;

    private ContextNormalizer() {}

    /** Normalize a raw context (keys of ENV_KEYS' values). Bad dates throw ContextException. */
    public static NormalizedContext normalize(Map<String, ?> raw) {
        if (raw == null) {
            raw = Collections.emptyMap();
        }
        String dateValue = clean(raw.get("execution_date"));
        if (dateValue == null) {
            dateValue = clean(raw.get("logical_date"));
        }
        String[] parsed = parseLogicalDate(dateValue);
        Long mapIndex = intOrNull(raw.get("map_index"));
        return new NormalizedContext(
            clean(raw.get("uid")),
            clean(raw.get("dag_id")),
            clean(raw.get("dag_run_id")),
            parsed[0],
            parsed[1],
            clean(raw.get("task_id")),
            intOrNull(raw.get("try_number")),
            mapIndex == null ? -1 : mapIndex);
    }

    /** The raw context from AIRFLOW_CTX_* names looked up in {@code source} (empty when none is set). */
    public static Map<String, String> fromEnv(Map<String, String> source, String prefix) {
        Map<String, String> raw = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : ENV_KEYS.entrySet()) {
            String value = clean(source.get(prefix + e.getKey()));
            if (value != null) {
                raw.put(e.getValue(), value);
            }
        }
        return raw;
    }

    /** Python's str(value).strip(), or null when that is empty. */
    static String clean(Object value) {
        if (value == null) {
            return null;
        }
        String text = strip(pythonStr(value));
        return text.isEmpty() ? null : text;
    }

    private static String pythonStr(Object value) {
        if (value instanceof Boolean) {
            return ((Boolean) value) ? "True" : "False";
        }
        return value.toString();
    }

    private static String strip(String text) {
        int start = 0;
        int end = text.length();
        while (start < end && isSpace(text.charAt(start))) {
            start++;
        }
        while (end > start && isSpace(text.charAt(end - 1))) {
            end--;
        }
        return text.substring(start, end);
    }

    private static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    /** Python's int(text), falling back to an integral float ("3.0"); null for anything else. */
    public static Long intOrNull(Object value) {
        String text = clean(value);
        if (text == null) {
            return null;
        }
        String digits = text.replace("_", "");
        try {
            return Long.parseLong(digits.startsWith("+") ? digits.substring(1) : digits);
        } catch (NumberFormatException notInt) {
            char last = Character.toLowerCase(text.charAt(text.length() - 1));
            if (last == 'd' || last == 'f') {
                return null; // Java accepts "1d"/"1f" as doubles, Python does not
            }
            try {
                double asDouble = Double.parseDouble(text);
                if (Double.isInfinite(asDouble) || asDouble != Math.rint(asDouble)) {
                    return null;
                }
                return (long) asDouble;
            } catch (NumberFormatException notFloat) {
                return null;
            }
        }
    }

    /**
     * Parse an execution/logical date in any spelling Airflow templates produce. Returns {instant, day};
     * the instant is null for a date-only spelling, both are null for no value.
     */
    public static String[] parseLogicalDate(Object value) {
        String text = clean(value);
        if (text == null) {
            return new String[] {null, null};
        }
        Matcher m = DATE.matcher(text);
        if (m.matches()) {
            try {
                LocalDate day = LocalDate.of(year(m.group(1), text), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3)));
                return new String[] {null, day.toString()};
            } catch (DateTimeException e) {
                throw new ContextException("not a date: '" + text + "'");
            }
        }
        m = TIMESTAMP.matcher(text);
        if (!m.matches()) {
            throw new ContextException("not a timestamp or date: '" + text + "'");
        }
        String fraction = m.group(7) == null ? "0" : m.group(7);
        if (fraction.length() > 6) {
            fraction = fraction.substring(0, 6);
        }
        StringBuilder micros = new StringBuilder(fraction);
        while (micros.length() < 6) {
            micros.append('0');
        }
        try {
            LocalDateTime local = LocalDateTime.of(year(m.group(1), text), Integer.parseInt(m.group(2)),
                Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)),
                Integer.parseInt(m.group(6)), Integer.parseInt(micros.toString()) * 1000);
            long offsetSeconds = offsetSeconds(m.group(8));
            LocalDateTime utc = LocalDateTime.ofEpochSecond(local.toEpochSecond(ZoneOffset.UTC) - offsetSeconds,
                local.getNano(), ZoneOffset.UTC);
            if (utc.getYear() < 1 || utc.getYear() > 9999) {
                throw new ContextException("not a timestamp: '" + text + "'");
            }
            String instant = Json.formatInstant(utc);
            return new String[] {instant, instant.substring(0, 10)};
        } catch (DateTimeException e) {
            throw new ContextException("not a timestamp: '" + text + "'");
        }
    }

    private static int year(String digits, String text) {
        int year = Integer.parseInt(digits);
        if (year < 1) { // Python's datetime starts at year 1
            throw new ContextException("not a date: '" + text + "'");
        }
        return year;
    }

    private static long offsetSeconds(String text) {
        if (text == null || text.equals("Z") || text.equals("z") || text.equals("UTC")) {
            return 0;
        }
        int sign = text.charAt(0) == '-' ? -1 : 1;
        String digits = text.substring(1).replace(":", "");
        long hours = Long.parseLong(digits.substring(0, 2));
        long minutes = digits.length() >= 4 ? Long.parseLong(digits.substring(2, 4)) : 0;
        long seconds = hours * 3600 + minutes * 60;
        if (seconds >= DAY_SECONDS) { // Python's timezone() refuses offsets of a day or more
            throw new DateTimeException("offset out of range: " + text);
        }
        return sign * seconds;
    }
}
