"""The demo's Spark application: a shuffle and a parquet write (jobs, stages, SQL queries, datasets).

Runs as `spark-submit demo_job.py OUT_DIR` or `python demo_job.py OUT_DIR`; it contains nothing about runlink.
"""

import sys

from pyspark.sql import SparkSession


def main(out_dir: str) -> None:
    spark = (
        SparkSession.builder.appName("runlink-demo-job")
        .master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        orders = spark.range(0, 5000).selectExpr("id", "id % 13 AS customer", "(id * 7) % 100 AS amount")
        totals = orders.groupBy("customer").sum("amount")
        totals.write.mode("overwrite").parquet(out_dir)
        print(f"customers={totals.count()}")
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
