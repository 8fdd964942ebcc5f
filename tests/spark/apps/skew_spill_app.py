"""A PySpark application the call-site and distribution tests spark-submit: it never imports runlink.

One stage reads a shuffle where one key holds most rows (a hot key: skew), one sorts more rows than the forced
spill threshold lets it hold (spill), one query counts, one fails. Each action's line is marked for the tests.

usage: skew_spill_app.py OUT_DIR
"""

import json
import sys

from pyspark.sql import SparkSession

out = sys.argv[1]
spark = SparkSession.builder.appName("runlink-skew-spill").getOrCreate()


def hot_key_rows():
    return spark.range(0, 200_000, 1, 4).selectExpr("CASE WHEN id % 10 < 9 THEN 0 ELSE id % 997 END AS key", "id AS v")


hot_key_rows().repartition(8, "key").selectExpr("key", "sha2(cast(v AS string), 256) AS h").write.mode(
    "overwrite").parquet(f"{out}/skewed")  # CALLSITE:skewed
sorted_rows = spark.range(0, 300_000, 1, 2).selectExpr("id", "rand(7) AS r").orderBy("r")
sorted_rows.write.mode("overwrite").parquet(f"{out}/sorted")  # CALLSITE:spill


def count_rows():
    return spark.read.parquet(f"{out}/sorted").count()  # CALLSITE:count


assert count_rows() == 300_000
try:
    spark.range(0, 10, 1, 1).selectExpr("assert_true(id < 0, 'runlink-skew-boom')").collect()  # CALLSITE:failing
except Exception:
    pass
sc = spark.sparkContext
sc._jsc.sc().listenerBus().waitUntilEmpty(60000)
with open(f"{out}/app.json", "w") as fh:
    json.dump({"app_id": sc.applicationId}, fh)
spark.stop()
