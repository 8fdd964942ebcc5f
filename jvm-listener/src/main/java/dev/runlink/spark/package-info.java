/**
 * The listeners users install by name ({@link dev.runlink.spark.RunlinkSparkListener} in spark.extraListeners,
 * {@link dev.runlink.spark.RunlinkQueryListener} in spark.sql.queryExecutionListeners) and
 * {@link dev.runlink.spark.RunlinkStreamingListener} (spark.sql.streaming.streamingQueryListeners) and
 * {@link dev.runlink.spark.PythonBridge}, which runlink's PySpark wrappers call through py4j: these four names are
 * fixed. Beside them, what the two listeners share: the JVM's {@code Agent} per tracker, the SQL executions one
 * records and the other reports ({@code Executions}), SparkConf access ({@code SparkConfs}) and the stage metrics'
 * compact shape ({@code StageMetrics}).
 *
 * <p>The sub-packages never import this one: {@code protocol} (the wire form) is imported by {@code context}
 * (settings, Airflow context, ids), {@code delivery} (queue, sender, HTTP), {@code plan} (reading query plans)
 * and {@code streaming} (Structured Streaming queries, aggregated per interval).
 */
package dev.runlink.spark;
