/**
 * Where the listener runs: its {@link dev.runlink.spark.context.Settings} (Spark conf, environment, aliases, token
 * file, defaults), the raw Airflow context they carry, and that context's normalization and deterministic ids,
 * twins of python's {@code runlink.context} and {@code runlink.ids} held equal by {@code tests/vectors/}.
 */
package dev.runlink.spark.context;
