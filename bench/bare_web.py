"""A minimal dispatching view for comparison: only `delay()`, no confirms, no id record.

It is the pattern of Flask's own Celery example; the gap between it and POST /task/ is
what publisher confirms and the PENDING record cost.

    gunicorn 'bench.bare_web:create_app()'    # reads FLASK_CONFIG like the real app
"""

from flask import Flask

from bench.bare import celery
from bench.tasks import NOOP


def create_app() -> Flask:
    app = Flask(__name__)
    celery.conf.broker_transport_options = {}  # no publisher confirms

    @app.post("/task/")
    def start_task() -> tuple[dict[str, str], int]:
        return {"task_id": celery.send_task(NOOP).id}, 202

    return app
