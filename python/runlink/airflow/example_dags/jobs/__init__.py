"""Spark applications the example DAGs launch."""
