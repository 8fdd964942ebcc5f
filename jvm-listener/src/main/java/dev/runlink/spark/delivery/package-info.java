/**
 * Getting events to the tracker without holding up Spark (python: {@code runlink.delivery},
 * {@code runlink.transports}): the bounded queue and its sender thread ({@link dev.runlink.spark.delivery.Delivery}),
 * the {@link dev.runlink.spark.delivery.Transport} it posts through, and {@link dev.runlink.spark.delivery.Once}
 * for warnings a failing tracker must not repeat in the driver log; and {@link dev.runlink.spark.delivery.Guard},
 * what a failing callback does to its listener.
 */
package dev.runlink.spark.delivery;
