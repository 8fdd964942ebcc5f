package dev.runlink.spark.context;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** Configuration and context resolution: Spark conf > environment > alias > $RUNLINK_HOME/token > default. */
public class SettingsTest {
    @Rule
    public TemporaryFolder tmp = new TemporaryFolder();

    private static Map<String, String> map(String... kv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    private Map<String, String> emptyHome() throws Exception {
        return map("RUNLINK_HOME", tmp.newFolder().getPath());
    }

    @Test
    public void defaults() throws Exception {
        Settings s = Settings.resolve(map(), emptyHome());
        assertEquals("http://127.0.0.1:8686", s.url);
        assertEquals("http://127.0.0.1:8686/api/v1/events", s.eventsUrl());
        assertTrue(s.tracking);
        assertFalse(s.hasToken());
        assertTrue(s.context.isEmpty());
        assertEquals(5000, s.flushTimeoutMs);
    }

    @Test
    public void urlPrecedence() throws Exception {
        Map<String, String> env = emptyHome();
        env.put("DBND__CORE__DATABAND_URL", "http://alias:1");
        assertEquals("http://alias:1", Settings.resolve(map(), env).url);
        env.put("RUNLINK_URL", "http://env:2/");
        assertEquals("http://env:2", Settings.resolve(map(), env).url);
        Map<String, String> conf = map("spark.env.RUNLINK_URL", "http://sparkenv:3");
        assertEquals("http://sparkenv:3", Settings.resolve(conf, env).url);
        conf.put("spark.runlink.url", "http://conf:4");
        assertEquals("http://conf:4", Settings.resolve(conf, env).url);
    }

    @Test
    public void aliasOnlyWhenPrimaryUnset() throws Exception {
        Map<String, String> env = emptyHome();
        env.put("RUNLINK_TRACKING", "true");
        env.put("DBND__TRACKING", "false");
        assertTrue(Settings.resolve(map(), env).tracking);
        env.remove("RUNLINK_TRACKING");
        assertFalse(Settings.resolve(map(), env).tracking);
        assertFalse(Settings.resolve(map("spark.runlink.tracking", "off"), emptyHome()).tracking);
    }

    @Test
    public void tokenFromConfEnvAliasThenHomeFile() throws Exception {
        File home = tmp.newFolder();
        Files.write(new File(home, "token").toPath(), "file-token\n".getBytes(StandardCharsets.UTF_8));
        Map<String, String> env = map("RUNLINK_HOME", home.getPath());
        assertEquals("file-token", Settings.resolve(map(), env).token);
        env.put("DBND__CORE__DATABAND_ACCESS_TOKEN", "alias-token");
        assertEquals("alias-token", Settings.resolve(map(), env).token);
        env.put("RUNLINK_TOKEN", "env-token");
        assertEquals("env-token", Settings.resolve(map(), env).token);
        assertEquals("conf-token", Settings.resolve(map("spark.runlink.token", "conf-token"), env).token);
        assertFalse("the token never shows", Settings.resolve(map(), env).toString().contains("env-token"));
    }

    @Test
    public void contextFromSparkConfWinsAsAWhole() throws Exception {
        Map<String, String> env = emptyHome();
        env.put("AIRFLOW_CTX_DAG_ID", "env_dag");
        env.put("AIRFLOW_CTX_TASK_ID", "env_task");
        env.put("AIRFLOW_CTX_TRY_NUMBER", "7");
        assertEquals(map("dag_id", "env_dag", "task_id", "env_task", "try_number", "7"),
            Settings.resolve(map(), env).context);
        Map<String, String> conf = map("spark.env.AIRFLOW_CTX_DAG_ID", "conf_dag",
            "spark.env.AIRFLOW_CTX_EXECUTION_DATE", "2026-11-21", "spark.env.AIRFLOW_CTX_TASK_ID", " ");
        // conf carries the context: nothing of the environment's (another task's?) values is mixed in
        assertEquals(map("dag_id", "conf_dag", "execution_date", "2026-11-21"), Settings.resolve(conf, env).context);
    }

    @Test
    public void contextValuesAreCappedToTheSchema() throws Exception {
        Map<String, String> env = emptyHome();
        env.put("AIRFLOW_CTX_TRY_NUMBER", "12345678901234567890");
        assertEquals(16, Settings.resolve(map(), env).context.get("try_number").length());
    }

    @Test
    public void tuningKeysAndBadValues() throws Exception {
        Settings s = Settings.resolve(map("spark.runlink.flushTimeoutMs", "250", "spark.runlink.queueSize", "x"),
            emptyHome());
        assertEquals(250, s.flushTimeoutMs);
        assertEquals(5_000, s.queueCapacity);
        assertNull(Settings.resolve(map(), emptyHome()).token);
    }
}
