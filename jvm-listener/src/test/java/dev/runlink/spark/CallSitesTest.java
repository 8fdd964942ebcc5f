package dev.runlink.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

import org.junit.Test;

public class CallSitesTest {
    @Test
    public void pythonLinesFromRunlinksWrappersAndFromPySpark() {
        // runlink's PySpark wrappers: the long form's first frame, with its function
        assertEquals("/dags/jobs/etl.py:42 load", CallSites.of("collect at /dags/jobs/etl.py:42",
            "/dags/jobs/etl.py:42 in load\n/dags/jobs/etl.py:90 in main"));
        // PySpark's own (short form only; its long form is the JVM's)
        assertEquals("/jobs/etl.py:12", CallSites.of("collect at /jobs/etl.py:12",
            "org.apache.spark.sql.Dataset.collect(Dataset.scala:3575)\nsun.reflect.Method.invoke"));
        assertEquals("/jobs/etl.py:12", CallSites.of("collect at /jobs/etl.py:12", ""));
    }

    @Test
    public void theUsersFrameOfAJvmApplication() {
        assertEquals("App.scala:42 com.acme.App$.main", CallSites.of("count at App.scala:42",
            "org.apache.spark.sql.Dataset.count(Dataset.scala:3615)\ncom.acme.App$.main(App.scala:42)\n"
                + "com.acme.App.main(App.scala)"));
        assertEquals("Etl.java:7 Etl.run", CallSites.of("save at Etl.java:7",
            "org.apache.spark.sql.DataFrameWriter.save(DataFrameWriter.scala:1)\n"
                + "java.base/jdk.internal.reflect.Method.invoke(Method.java:3)\nEtl.run(Etl.java:7)"));
    }

    @Test
    public void internalsAreNoCallSite() {
        // a PySpark driver without the wrappers: py4j's reflection, or an AQE thread
        assertNull(CallSites.of("count at NativeMethodAccessorImpl.java:0",
            "org.apache.spark.sql.Dataset.count(Dataset.scala:3615)\n"
                + "jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n"
                + "py4j.reflection.MethodInvoker.invoke(MethodInvoker.java:244)\njava.lang.Thread.run(Thread.java:840)"));
        assertNull(CallSites.of("$anonfun$withThreadLocalCaptured$1 at CompletableFuture.java:1768",
            "org.apache.spark.sql.execution.SQLExecution$.$anonfun$withThreadLocalCaptured$1(SQLExecution.scala:1)\n"
                + "java.util.concurrent.CompletableFuture$AsyncSupply.run(CompletableFuture.java:1768)"));
        assertNull(CallSites.of("nightly load of the orders", "org.apache.spark.sql.Dataset.count(D.scala:1)"));
        assertNull(CallSites.of(null, null));
        // a call site the user's code set by hand
        assertEquals("load the orders", CallSites.of("load the orders", ""));
    }

    @Test
    public void aSparkConnectClientsLineFromItsOperationTags() {
        String tags = "SparkConnect_OperationTag_User__Session_s1_Operation_o1,"
            + "SparkConnect_SessionTag_User__Session_s1_Tag_runlink-callsite=/nb/report.py:9 load";
        assertEquals("/nb/report.py:9 load", CallSites.fromTags(tags));
        assertEquals("/a.py:1 <module>", CallSites.fromTags("x_Tag_runlink-callsite=/a.py:1 <module>,other"));
        assertNull(CallSites.fromTags("SparkConnect_OperationTag_User__Session_s1_Operation_o1"));
        assertNull(CallSites.fromTags(null));
        // the SQL execution a Connect job ran for takes the line its job named (Spark's own names server frames)
        Object qe = new Object();
        Executions.started(501L, "collect at ExecuteThreadRunner.scala:1",
            "org.apache.spark.sql.connect.execution.ExecuteThreadRunner.execute(ExecuteThreadRunner.scala:1)", null);
        Executions.jobCallsite(501L, "/nb/report.py:9 load");
        Executions.ended(qe, 501L);
        assertEquals("/nb/report.py:9 load", Executions.take(qe).callsite());
    }
}
