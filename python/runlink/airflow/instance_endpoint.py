"""`GET /runlink/instance` on Airflow's API server (Airflow 3) or web server (Airflow 2): this deployment's uid.

Why an endpoint: the API server reaches the metadata database, so it derives the same uid as the scheduler; the
syncer (`runlink airflow add`) and Airflow 3 workers that cannot see the database ask it instead of being told.
The answer holds no secret (a hash, the versions) and needs no login, like Airflow's own health endpoint.
"""

from __future__ import annotations

from typing import Any


def instance_view() -> dict[str, Any]:
    """What the endpoint answers."""
    import airflow
    from runlink import __version__
    from runlink.airflow import identity
    from runlink.airflow.settings import raw_setting

    uid, source = identity.resolve(raw_setting("uid"))
    return {"uid": uid, "source": source, "airflow_version": airflow.__version__, "runlink_version": __version__}


def fastapi_app() -> Any:
    """The sub-application Airflow 3 mounts at `/runlink` (plugin `fastapi_apps`)."""
    from fastapi import FastAPI

    app = FastAPI(title="runlink", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/instance")
    def instance() -> dict[str, Any]:
        return instance_view()

    return app


def flask_blueprint() -> Any:
    """The blueprint Airflow 2 registers at `/runlink` (plugin `flask_blueprints`)."""
    from flask import Blueprint, jsonify

    blueprint = Blueprint("runlink", __name__, url_prefix="/runlink")

    @blueprint.route("/instance")
    def instance() -> Any:
        return jsonify(instance_view())

    return blueprint
