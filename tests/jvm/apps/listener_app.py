"""A small PySpark application for the JVM listener tests: parquet write and read, a join and an aggregate,
saveAsTable / insertInto / writeTo().create() (the session catalog takes no other V2 write), and one
failing job. argv[1]: a scratch folder."""

import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

out = sys.argv[1]
spark = SparkSession.builder.appName("runlink-jvm-listener-test").getOrCreate()
people = spark.range(0, 1000).withColumn("k", F.col("id") % 7)
people.write.mode("overwrite").parquet(os.path.join(out, "people"))
read = spark.read.parquet(os.path.join(out, "people"))
counts = read.groupBy("k").count()
assert len(counts.collect()) == 7
read.join(counts, "k").write.mode("overwrite").saveAsTable("joined")
spark.table("joined").limit(10).write.insertInto("joined")
counts.writeTo("counts_v2").using("parquet").create()
try:
    spark.range(10).select(F.assert_true(F.col("id") < 5)).collect()
    raise SystemExit("the failing job did not fail")
except Exception as exc:  # noqa: BLE001 - the failure is the point
    if isinstance(exc, SystemExit):
        raise
    print("expected failure:", type(exc).__name__)
spark.stop()
print("APP DONE")
