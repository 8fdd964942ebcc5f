"""The PySpark application of the Spark contract test (tests/contract/contract_spark.py), spark-submitted on every
Spark of the compatibility matrix (3.3 to 4.x): a job outside SQL with a shuffle, a parquet write and read, a SQL query
over that data (a shuffle, and datasets in and out), a failing job the app catches. It needs pyspark only (no
runlink import: the listener jar does the tracking), so it runs on a venv with nothing but pyspark.

When its work is done it writes OUT_DIR/ready.json (application id, UI address) and keeps its UI, and so Spark's
REST API, up until the test creates OUT_DIR/release (polled, with a deadline), then stops.

usage: spark_contract_app.py OUT_DIR
"""

import json
import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

RELEASE_DEADLINE_S = 600

out = sys.argv[1]
spark = SparkSession.builder.appName("runlink-contract").getOrCreate()
sc = spark.sparkContext

# a job outside any SQL query, with a shuffle: a JVM RDD action (no Python worker to start)
assert spark.range(0, 1000, 1, 2).repartition(3)._jdf.rdd().count() == 1000

# a parquet write and read
orders = spark.range(0, 2000, 1, 2).select(
    F.col("id").alias("order_id"), (F.col("id") % 7).alias("customer_id"), (F.col("id") * 2).alias("amount"))
orders.write.mode("overwrite").parquet(f"{out}/orders")
assert spark.read.parquet(f"{out}/orders").count() == 2000

# a SQL query with datasets: parquet in, a shuffle, parquet out
spark.read.parquet(f"{out}/orders").createOrReplaceTempView("orders")
spark.sql("SELECT customer_id, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer_id") \
    .write.mode("overwrite").parquet(f"{out}/totals")
totals = spark.read.parquet(f"{out}/totals").collect()
assert len(totals) == 7 and sum(row.n for row in totals) == 2000, totals

# a failing job, caught: the application goes on (one task, so the REST API and the listener see the same stage)
try:
    spark.range(0, 10, 1, 1).selectExpr("assert_true(id < 0, 'matrix-contract-boom')").collect()
except Exception:  # noqa: BLE001 - any error of the job is the expected failure
    failed = True
else:
    failed = False
assert failed, "the failing job did not fail"

# Spark's status store (its REST API) has every event posted so far once the listener bus is empty
sc._jsc.sc().listenerBus().waitUntilEmpty(60000)
ready = {"app_id": sc.applicationId, "ui": sc.uiWebUrl, "spark": spark.version}
with open(f"{out}/ready.json.tmp", "w") as fh:
    json.dump(ready, fh)
os.replace(f"{out}/ready.json.tmp", f"{out}/ready.json")

deadline = time.monotonic() + RELEASE_DEADLINE_S
while not os.path.exists(f"{out}/release"):
    if time.monotonic() > deadline:
        print(f"spark_contract_app: no {out}/release within {RELEASE_DEADLINE_S}s; stopping", file=sys.stderr)
        break
    time.sleep(0.2)  # polling interval; the condition is the release file
spark.stop()
