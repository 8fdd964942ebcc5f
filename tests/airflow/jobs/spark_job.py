"""A small real Spark job: a shuffle (groupBy) and a parquet write, so jobs, stages and SQL queries exist.

Usage: spark-submit spark_job.py OUT_DIR   or   python spark_job.py OUT_DIR (creates its own SparkSession).
"""

import sys

from pyspark.sql import SparkSession


def main(out_dir: str) -> int:
    spark = (
        SparkSession.builder.appName("runlink-test-job")
        .master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        df = spark.range(0, 2000).selectExpr("id % 7 AS k", "id AS v")
        rows = df.groupBy("k").count().collect()
        df.write.mode("overwrite").parquet(out_dir)
        print(f"groups={len(rows)}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
