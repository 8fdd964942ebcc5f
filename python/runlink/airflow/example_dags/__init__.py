"""Example DAGs shipped with runlink (`runlink demo` runs runlink_demo)."""
