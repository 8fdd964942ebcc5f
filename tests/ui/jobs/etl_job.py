"""A small real Spark ETL for the UI tests: a read of generated data, a skewed groupBy (shuffle), a join and a
parquet write, then a read back, so the app has several jobs, stages, SQL queries and datasets.

Usage: spark-submit etl_job.py OUT_DIR
"""

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main(out_dir: str) -> int:
    spark = (
        SparkSession.builder.appName("ui-etl")
        .master("local[2]")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        events = spark.range(0, 50_000).select(
            (F.when(F.col("id") % 10 == 0, F.lit(0)).otherwise(F.col("id") % 97)).alias("user"),
            (F.col("id") % 13).alias("kind"), F.col("id").alias("v"))
        events.write.mode("overwrite").parquet(f"{out_dir}/events")
        loaded = spark.read.parquet(f"{out_dir}/events")
        per_user = loaded.groupBy("user").agg(F.count("*").alias("n"), F.sum("v").alias("total"))
        kinds = loaded.groupBy("kind").count()
        joined = per_user.join(loaded.select("user", "kind").distinct(), "user").join(kinds, "kind")
        joined.write.mode("overwrite").parquet(f"{out_dir}/daily")
        print("rows", spark.read.parquet(f"{out_dir}/daily").count())
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
