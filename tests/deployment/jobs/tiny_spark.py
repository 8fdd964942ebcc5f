"""The smallest PySpark job with a shuffle: one job, two stages, one SQL query. Run by a plain `spark-submit`."""

from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("deployment-tiny").master("local[1]").getOrCreate()
try:
    groups = spark.range(0, 100).selectExpr("id % 3 AS k").groupBy("k").count().collect()
    print(f"groups={len(groups)}")
finally:
    spark.stop()
