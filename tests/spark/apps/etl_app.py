"""The PySpark application the end-to-end tests spark-submit: parquet write/read, a join, an aggregation,
log_dataframe of the result, one failing job; then it records what Spark's own REST status API says about its
stages and jobs.

usage: etl_app.py OUT_DIR [--track-python]
"""

import json
import sys
import urllib.request

from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

out = sys.argv[1]
spark = SparkSession.builder.appName("runlink-e2e-etl").getOrCreate()
sc = spark.sparkContext
if "--track-python" in sys.argv:
    import runlink.spark

    runlink.spark.track_session(spark)

orders = spark.createDataFrame([(i, i % 7, float(i)) for i in range(1000)], ["order_id", "customer_id", "amount"])
customers = spark.createDataFrame([(c, f"name{c}") for c in range(7)], ["customer_id", "name"])
orders.write.mode("overwrite").parquet(f"{out}/orders")  # CALLSITE:write_orders
customers.write.mode("overwrite").parquet(f"{out}/customers")

o = spark.read.parquet(f"{out}/orders")
c = spark.read.parquet(f"{out}/customers")
totals = o.join(c, "customer_id").groupBy("name").agg(F.sum("amount").alias("total"), F.count("*").alias("n"))
totals.write.mode("overwrite").parquet(f"{out}/totals")  # CALLSITE:write_totals

result = spark.read.parquet(f"{out}/totals")
schema = StructType([StructField("name", StringType()), StructField("total", DoubleType()),
                     StructField("n", LongType(), False)])
expected_rows = {}
for i in range(1000):
    name = f"name{i % 7}"
    total, n = expected_rows.get(name, (0.0, 0))
    expected_rows[name] = (total + float(i), n + 1)
expected = spark.createDataFrame([(k, t, n) for k, (t, n) in expected_rows.items()], schema)
assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
import runlink  # noqa: E402 - the SDK in a spark-submit app: it reports where the listeners do

runlink.log_dataframe("totals", result, operation="read", path=f"{out}/totals", with_stats=True)

# One task: with two, the second task's end can reach Spark's status store after the stage was aborted, and the
# REST API then counts it while the stage-completed event (what listeners get) cannot.
failed = False
try:
    spark.range(0, 10, 1, 1).selectExpr("assert_true(id < 0, 'runlink-e2e-boom')").collect()  # CALLSITE:failing
except Exception:
    failed = True
assert failed, "the failing job did not fail"

# Spark's own view of this application, once its listener bus has processed every event posted so far.
sc._jsc.sc().listenerBus().waitUntilEmpty(60000)
base = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"
with urllib.request.urlopen(base + "/stages?details=false", timeout=30) as response:
    stages = json.load(response)
with urllib.request.urlopen(base + "/jobs", timeout=30) as response:
    jobs = json.load(response)
with open(f"{out}/spark_rest.json", "w") as fh:
    json.dump({"app_id": sc.applicationId, "stages": stages, "jobs": jobs}, fh)
spark.stop()
