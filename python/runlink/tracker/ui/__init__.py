"""The web UI: pages, forms, their queries, templating and sessions, with its templates/ and static/ folders.

The JSON twins of the pages are routes/views.py; nothing here imports from routes/."""
