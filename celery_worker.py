"""Worker entrypoint: ``celery -A celery_worker.celery worker --loglevel=info``.

The worker builds the same Flask app as the web process, from the same config file
(``FLASK_CONFIG``), so its tasks run in that app's context.
"""

from app import create_app_or_exit

flask_app = create_app_or_exit()
celery = flask_app.extensions["celery"]
