package dev.runlink.spark.context;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.fasterxml.jackson.databind.JsonNode;
import dev.runlink.spark.TestSupport;
import dev.runlink.spark.protocol.Json;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.Test;

/** The vectors shared with python/runlink/context.py and ids.py: both implementations must agree. */
public class VectorsTest {

    @SuppressWarnings("unchecked")
    private static Map<String, Object> raw(JsonNode node) {
        return TestSupport.JSON.convertValue(node, LinkedHashMap.class); // numbers stay numbers, as in Python
    }

    @Test
    public void contextNormalizationMatchesPython() throws Exception {
        JsonNode cases = TestSupport.vectors("context_normalization.json").get("cases");
        assertTrue("vectors present", cases.size() > 10);
        for (JsonNode c : cases) {
            String name = c.get("name").asText();
            NormalizedContext ctx = ContextNormalizer.normalize(raw(c.get("raw")));
            JsonNode want = c.get("normalized");
            JsonNode got = TestSupport.JSON.valueToTree(ctx.toMap());
            assertEquals(name + ": normalized", want.toString(), got.toString());
            assertEquals(name + ": key", c.get("key").asText(), ctx.key());
            assertEquals(name + ": context id", c.get("context_id").asText(), Ids.contextId(ctx));
        }
    }

    @Test
    public void badDatesRaiseLikePython() throws Exception {
        JsonNode errors = TestSupport.vectors("context_normalization.json").get("errors");
        assertTrue(errors.size() > 0);
        for (JsonNode c : errors) {
            try {
                ContextNormalizer.normalize(raw(c.get("raw")));
                fail(c.get("name").asText() + ": expected a ContextException");
            } catch (ContextException expected) {
                assertTrue(expected.getMessage().contains(c.get("raw").get("execution_date").asText()));
            }
        }
    }

    @Test
    public void idsMatchPython() throws Exception {
        JsonNode vectors = TestSupport.vectors("ids.json");
        assertEquals(Ids.NAMESPACE.toString(), vectors.get("namespace").asText());
        for (JsonNode v : vectors.get("spark_app_id")) {
            String attempt = v.get("attempt_id").isNull() ? null : v.get("attempt_id").asText();
            assertEquals(v.toString(), v.get("id").asText(), Ids.sparkAppId(v.get("app_id").asText(), attempt));
        }
        for (JsonNode v : vectors.get("event_id")) {
            assertEquals(v.toString(), v.get("id").asText(),
                Ids.eventId(v.get("source_id").asText(), v.get("kind").asText(), v.get("discriminator").asText()));
        }
    }

    @Test
    public void wireInstantsMatchPythonFormatInstant() {
        assertEquals("1970-01-01T00:00:00.000000Z", Json.formatEpochMillis(0));
        assertEquals("2026-11-22T23:59:59.999000Z", Json.formatEpochMillis(1795391999999L));
    }

    @Test
    public void edgeSpellingsFollowPythonRules() {
        assertEquals(Long.valueOf(3), ContextNormalizer.intOrNull("3.0"));
        assertEquals(Long.valueOf(3), ContextNormalizer.intOrNull(" +3 "));
        assertNull(ContextNormalizer.intOrNull("3.5"));
        assertNull(ContextNormalizer.intOrNull("1d")); // a Java double literal, not a Python number
        assertNull(ContextNormalizer.intOrNull("nan"));
        // offsets of up to 23:59 are valid in Python (Java's ZoneOffset stops at 18:00)
        assertEquals("2026-11-20T04:00:00.000000Z",
            ContextNormalizer.parseLogicalDate("2026-11-21T00:00:00+20:00")[0]);
        try {
            ContextNormalizer.parseLogicalDate("0000-01-01");
            fail("year 0 is not a Python date");
        } catch (ContextException expected) {
            // as Python
        }
    }
}
