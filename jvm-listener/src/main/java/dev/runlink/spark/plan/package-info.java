/**
 * Reading a finished query out of its QueryExecution on the agent's worker thread: datasets, row counts, schemas
 * and the plan summary ({@link dev.runlink.spark.plan.PlanInspector}), all by name through
 * {@link dev.runlink.spark.plan.Reflect}, which the listeners also use for the few event members whose signatures
 * differ between Spark 3.5 and 4.x.
 */
package dev.runlink.spark.plan;
