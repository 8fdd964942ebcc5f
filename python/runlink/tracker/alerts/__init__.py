"""Alerts: rules (alerts.rules), evaluation (alerts.engine), delivery (alerts.notify), the background worker
that runs them after ingest commits and on a timer (alerts.worker)."""
