package dev.runlink.spark;

import dev.runlink.spark.protocol.Json;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkEnv;

/** SparkConf access that links only against signatures equal in Spark 3.5 and 4.x. */
final class SparkConfs {
    private static final Pattern SECRET = Pattern.compile(
        "(?i).*(secret|token|password|passwd|credential|private|signature|auth|access[._-]?key|\\.key$).*");
    static final String MASK = "*****";
    private static final int MAX_ENTRIES = 500;

    private SparkConfs() {}

    static Map<String, String> toMap(SparkConf conf) {
        Map<String, String> out = new LinkedHashMap<>();
        if (conf != null) {
            for (scala.Tuple2<String, String> kv : conf.getAll()) {
                out.put(kv._1(), kv._2());
            }
        }
        return out;
    }

    /** The conf of the running SparkContext for listeners Spark builds without one; else system properties. */
    static SparkConf active() {
        SparkEnv env = SparkEnv.get();
        return env != null ? env.conf() : new SparkConf();
    }

    /** The conf as reported to the tracker: secrets masked, entries and values capped. */
    static Map<String, Object> masked(Map<String, String> conf) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : conf.entrySet()) {
            if (out.size() >= MAX_ENTRIES) {
                break;
            }
            String key = e.getKey();
            out.put(key, SECRET.matcher(key).matches() ? MASK : Json.cap(e.getValue(), 4096));
        }
        return out;
    }
}
