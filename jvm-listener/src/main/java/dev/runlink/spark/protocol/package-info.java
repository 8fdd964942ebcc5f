/**
 * The protocol-v1 wire form (python: {@code runlink.protocol}): one {@link dev.runlink.spark.protocol.Event} and
 * {@link dev.runlink.spark.protocol.Json} (the mapper, wire instants, the schema's length caps). Imports nothing
 * of runlink's.
 */
package dev.runlink.spark.protocol;
