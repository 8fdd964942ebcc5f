package dev.runlink.spark.context;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;

import java.util.Map;
import org.junit.Test;

/** The {@code spark.runlink.context} value as python/runlink/spark/job_context.py writes it. */
public class WorkContextTest {
    @Test
    public void parsesWhatPythonWrites() {
        // urllib.parse.quote(value, safe=""): ':' and '+' escaped, '-', '_', '.', '~' kept
        Map<String, String> raw = WorkContext.parse("dag_id=etl&dag_run_id=manual__2026-12-03T10%3A00%3A00%2B00%3A00"
            + "&task_id=load.part_1&try_number=2&map_index=-1&uid=inst%201&logical_date=2026-12-03T10%3A00%3A00Z");
        assertEquals("etl", raw.get("dag_id"));
        assertEquals("manual__2026-12-03T10:00:00+00:00", raw.get("dag_run_id"));
        assertEquals("load.part_1", raw.get("task_id"));
        assertEquals("2", raw.get("try_number"));
        assertEquals("-1", raw.get("map_index"));
        assertEquals("inst 1", raw.get("uid"));
        assertEquals("2026-12-03T10:00:00Z", raw.get("logical_date"));
        assertEquals(7, raw.size());
        NormalizedContext ctx = ContextNormalizer.normalize(raw);
        assertEquals(Long.valueOf(2), ctx.tryNumber);
        assertEquals("2026-12-03T10:00:00.000000Z", ctx.logicalDate);
    }

    @Test
    public void utf8AndCommasComeBackFromTheirEscapes() {
        Map<String, String> raw = WorkContext.parse("dag_id=%C3%A9t%C3%A9%2Cnightly&task_id=a%26b%3Dc");
        assertEquals("été,nightly", raw.get("dag_id"));
        assertEquals("a&b=c", raw.get("task_id"));
        assertEquals("'+' is not a space here", "a+b", WorkContext.parse("dag_id=a+b").get("dag_id"));
    }

    @Test
    public void anythingElseIsNotAContext() {
        assertNull(WorkContext.parse(null));
        assertNull(WorkContext.parse(""));
        assertNull("no dag_id", WorkContext.parse("task_id=load"));
        assertNull("blank dag_id", WorkContext.parse("dag_id=%20&task_id=load"));
        assertNull("unknown key (a token has no place here)", WorkContext.parse("dag_id=etl&token=abc"));
        assertNull("repeated key", WorkContext.parse("dag_id=etl&dag_id=other"));
        assertNull("no '='", WorkContext.parse("dag_id"));
        assertNull("empty pair", WorkContext.parse("dag_id=etl&&task_id=x"));
        assertNull("bad escape", WorkContext.parse("dag_id=%zz"));
        assertNull("cut escape", WorkContext.parse("dag_id=ab%4"));
        assertNull("bad UTF-8", WorkContext.parse("dag_id=%C3"));
        assertNull("raw non-ASCII", WorkContext.parse("dag_id=\u00e9"));
        assertNull("a redacted conf", WorkContext.parse("*********(redacted)"));
        StringBuilder huge = new StringBuilder("dag_id=");
        for (int i = 0; i < WorkContext.MAX_CHARS; i++) {
            huge.append('a');
        }
        assertNull("too long", WorkContext.parse(huge.toString()));
    }

    @Test
    public void valuesAreCappedAndRepeatedTextSharesOneMap() {
        StringBuilder longTask = new StringBuilder();
        for (int i = 0; i < 300; i++) {
            longTask.append('t');
        }
        Map<String, String> raw = WorkContext.parse("dag_id=etl&task_id=" + longTask);
        assertEquals(250, raw.get("task_id").length());
        assertSame(raw, WorkContext.parse("dag_id=etl&task_id=" + longTask));
    }
}
