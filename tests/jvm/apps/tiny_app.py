"""One small aggregate, then stop: for the tracker-down and tracker-hanging tests."""

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

spark = SparkSession.builder.appName("runlink-jvm-tiny").getOrCreate()
assert len(spark.range(1000).groupBy((F.col("id") % 3).alias("k")).count().collect()) == 3
spark.stop()
print("APP DONE")
