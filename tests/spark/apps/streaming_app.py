"""The Structured Streaming application tests/spark/test_streaming.py spark-submits, in one driver:

1. `incremental_load`: an Airflow-style incremental load, files in a folder -> parquet, trigger(availableNow=True),
   one file per batch;
2. `rate_to_memory`: a rate source into a memory sink, stopped once it ran MIN_BATCHES batches;
3. `failing_query`: a query whose first batch with rows fails (assert_true).

Then spark.stop(), as a task would. Writes what Spark itself says (ids, batches, rows) to OUT_DIR/streams.json.

usage: streaming_app.py OUT_DIR
"""

import json
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.utils import StreamingQueryException

FILES = 3
ROWS_PER_FILE = 10
MIN_BATCHES = 4
DEADLINE_S = 60

out = Path(sys.argv[1])
spark = SparkSession.builder.appName("runlink-e2e-streaming").getOrCreate()
seen = {}


def record(query, **more):
    progress = query.recentProgress
    seen[query.name] = {"id": str(query.id), "run_id": str(query.runId),
                        "batches": len({p["batchId"] for p in progress}),
                        "input_rows": sum(p["numInputRows"] for p in progress),
                        "latest_batch_id": progress[-1]["batchId"] if progress else None, **more}


inbox = out / "inbox"
inbox.mkdir(parents=True)
for f in range(FILES):
    lines = [json.dumps({"id": f * ROWS_PER_FILE + i, "v": f"row{i}"}) for i in range(ROWS_PER_FILE)]
    (inbox / f"part-{f}.json").write_text("\n".join(lines) + "\n")
load = (spark.readStream.schema("id LONG, v STRING").option("maxFilesPerTrigger", 1).json(str(inbox))
        .writeStream.format("parquet").option("path", str(out / "loaded"))
        .option("checkpointLocation", str(out / "ck_load")).queryName("incremental_load")
        .trigger(availableNow=True).start())
load.awaitTermination()
record(load)

rate = (spark.readStream.format("rate").option("rowsPerSecond", 20).load()
        .writeStream.format("memory").queryName("rate_to_memory").trigger(processingTime="300 milliseconds").start())
deadline = time.monotonic() + DEADLINE_S
while len(rate.recentProgress) < MIN_BATCHES and time.monotonic() < deadline:
    time.sleep(0.1)  # polling Spark's own progress; the condition is the batch count
rate.stop()
record(rate)

failing = (spark.readStream.format("rate").option("rowsPerSecond", 5).load()
           .selectExpr("assert_true(value < 0, 'runlink-stream-boom') AS checked")
           .writeStream.format("memory").queryName("failing_query").start())
try:
    failing.awaitTermination(DEADLINE_S)
    error = None
except StreamingQueryException as exc:
    error = str(exc)[:500]
record(failing, error=error)

(out / "streams.json").write_text(json.dumps({"app_id": spark.sparkContext.applicationId, "queries": seen}))
spark.stop()
