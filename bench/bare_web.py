"""A minimal dispatching view for comparison: only `delay()`, no id record.

It is the pattern of Flask's own Celery example; the gap between it and POST /task/ is
what the PENDING record and the rest of the app cost, and, with confirms off, what
publisher confirms cost.

    gunicorn 'bench.bare_web:create_app(confirms=False)'    # reads FLASK_CONFIG like the real app
"""

from flask import Flask

from bench.bare import celery
from bench.tasks import NOOP


def create_app(confirms: bool) -> Flask:
    app = Flask(__name__)
    if not confirms:
        celery.conf.broker_transport_options = {}

    @app.post("/task/")
    def start_task() -> tuple[dict[str, str], int]:
        return {"task_id": celery.send_task(NOOP).id}, 202

    return app
