/**
 * Structured Streaming queries, reported per query run: a start, one aggregate per interval, an end.
 *
 * <p>{@link dev.runlink.spark.streaming.StreamingListener} only collects: it reads each of Spark's streaming events
 * into a {@link dev.runlink.spark.streaming.BatchProgress} (the one place that touches Spark's progress API) and hands
 * it on. {@link dev.runlink.spark.streaming.StreamingQueries} is the one place that aggregates: it keeps one
 * fixed-size {@link dev.runlink.spark.streaming.QueryWindow} per running query and emits events through the sink it
 * is given. Like the other sub-packages this one never imports {@code dev.runlink.spark}: the class Spark builds by
 * name ({@code dev.runlink.spark.RunlinkStreamingListener}) lives there and hands in the JVM's delivery.
 */
package dev.runlink.spark.streaming;
