"""The web UI: Jinja2 templates and static files (this folder), sessions (ui.session), routes (routes/ui.py)."""
