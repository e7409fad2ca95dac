"""Flask's own Celery example's pattern, for comparison: `delay()` and `AsyncResult`, no id record.

POST answers the id of a task (bench.tasks.now) it only sent; GET answers as the
example's `task_result` view does (three reads of the result while it is pending).
The gap between it and POST /task/ is what the PENDING record and the rest of the app
cost, and, with confirms off (as Flask's example), what publisher confirms cost.

    gunicorn 'bench.bare_web:create_app(confirms=False)'    # reads FLASK_CONFIG like the real app
"""

from typing import Any

from flask import Flask, url_for

from bench.bare import celery
from bench.tasks import NOW


def create_app(confirms: bool) -> Flask:
    app = Flask(__name__)
    if not confirms:
        celery.conf.broker_transport_options = {}

    @app.post("/task/")
    def start_task() -> tuple[dict[str, str], int, dict[str, str]]:
        task_id = celery.send_task(NOW).id
        return {"task_id": task_id}, 202, {"Location": url_for("task_status", task_id=task_id)}

    @app.get("/task/<task_id>")
    def task_status(task_id: str) -> dict[str, Any]:
        result = celery.AsyncResult(task_id)
        return {
            "ready": result.ready(),
            "successful": result.successful(),
            "value": result.result if result.ready() else None,
        }

    return app
