"""OpenLineage in the tracker: RunEvents in (receive, facets, translator, links, ids, pending), the run tree's
child runs out (children), and runlink's events exported as OpenLineage (export).

Incoming RunEvents become protocol v1 events, fed through the tracker's own ingest.

Why translate instead of storing OpenLineage as-is: the run tree, linking, merge rules, dedupe and alerts all work
on protocol v1 events, so an OpenLineage producer (the Airflow provider, openlineage-spark, any client) lands in
the SAME task attempt / Spark application as runlink's own agents, with the same validation.

Mapping (facets as the Airflow provider and openlineage-spark write them):

- Airflow task run (run facet `airflow` with `task`, or job facet `jobType` AIRFLOW/TASK): `task_attempt.start`
  (START/RUNNING) or `task_attempt.end` (COMPLETE -> success, FAIL/ABORT -> failed, `errorMessage` -> error),
  context from `airflow.dagRun` (run_id, logical_date), `airflow.task.task_id`, `airflow.taskInstance`
  (try_number, map_index); `nominalTime` stands in for a missing logical date. Inputs/outputs -> `dataset`.
- Airflow DAG run (`airflowDagRun`, or jobType DAG): `dag_run.start` / `dag_run.end`.
- Spark application (`spark_applicationDetails`, or jobType SPARK/APPLICATION): `spark_app.start|end` with the
  real `applicationId`, so it merges with runlink's JVM listener; its Airflow context comes from its `parent`
  run facet (an Airflow task run seen before or after it).
- Spark SQL execution (SPARK integration, `spark.logicalPlan`): one `sql_query` at its terminal event with
  inputs/outputs (schema, `outputStatistics`/`inputStatistics` rowCount/size/fileCount, `symlinks` tables),
  the plan (capped), duration from its START. Its app comes from its parent run (the application run).

Order independence: `openlineage_runs` remembers what each OpenLineage run id resolved to. A SQL event whose
parent application is not known yet waits in `openlineage_pending` and is translated when the parent arrives;
a Spark application first seen without its Airflow parent is tracked as a run of its own and re-pointed (by an
`agent_health` link event carrying the context: Airflow context outranks the synthetic one) when the parent
arrives. Ids: uuid5 over (runId, eventType, eventTime, part), so a re-sent OpenLineage event changes nothing.
"""
