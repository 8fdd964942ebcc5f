"""A PySpark application the call-site, distribution and diagnosis tests spark-submit: it never imports runlink.

It writes its input; then one stage reads a shuffle of it where one key holds most rows (a hot key: skew), one
sorts more rows than the forced spill threshold lets it hold (spill), one query counts, one fails. Each action's line
is marked for the tests. `even`: the task's usual day, a small input with its keys spread evenly, nothing spills.

usage: skew_spill_app.py OUT_DIR [even]
"""

import json
import sys

from pyspark.sql import SparkSession

out = sys.argv[1]
even = sys.argv[2:] == ["even"]
rows = 12_000 if even else 300_000
key = "id % 997" if even else "CASE WHEN id % 10 < 9 THEN 0 ELSE id % 997 END"
spark = SparkSession.builder.appName("runlink-skew-spill").getOrCreate()

generated = spark.range(0, rows, 1, 2).selectExpr("id", "rand(7) AS r")
generated.write.mode("overwrite").parquet(f"{out}/input")  # CALLSITE:input


def input_rows():
    return spark.read.parquet(f"{out}/input")


input_rows().selectExpr(f"{key} AS key", "id AS v").repartition(8, "key").selectExpr(
    "key", "sha2(cast(v AS string), 256) AS h").write.mode("overwrite").parquet(f"{out}/skewed")  # CALLSITE:skewed
input_rows().orderBy("r").write.mode("overwrite").parquet(f"{out}/sorted")  # CALLSITE:spill


def count_rows():
    return spark.read.parquet(f"{out}/sorted").count()  # CALLSITE:count


assert count_rows() == rows
try:
    spark.range(0, 10, 1, 1).selectExpr("assert_true(id < 0, 'runlink-skew-boom')").collect()  # CALLSITE:failing
except Exception:
    pass
sc = spark.sparkContext
sc._jsc.sc().listenerBus().waitUntilEmpty(60000)
with open(f"{out}/app.json", "w") as fh:
    json.dump({"app_id": sc.applicationId}, fh)
spark.stop()
