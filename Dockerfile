# The web app and the worker, one image: gunicorn by default, `celery ... worker` in compose.
# BASE must provide python3 (3.11+) with venv; by default the official slim image.
# Without a registry: .ci/build-offline-images builds local/python:bookworm to use here.
ARG BASE=python:3.11-slim
FROM ${BASE} AS app

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH
RUN python3 -m venv /venv
# The runtime lock: every package at its locked version, each file checked against its hashes.
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /app/requirements.txt
COPY app /app/app
COPY celery_worker.py gunicorn.conf.py /app/
WORKDIR /app

# Never root: a compromised task or request gets an unprivileged account.
RUN useradd --system --no-create-home --uid 10001 service
USER service

# The config file (it holds secrets) is mounted, never baked in; environment variables
# (FLASK_AUTH_TOKENS, CELERY_BROKER_URL, CELERY_RESULT_BACKEND) may replace its secrets.
ENV FLASK_CONFIG=/run/secrets/api-config.yaml
ENV PORT=8080
# The internal port (/metrics, /readyz with its reasons: docs/security.md), loopback unless
# INTERNAL_ADDRESS says otherwise (a scraper in another container); the config's
# internal_port must be the same number. Never published.
ENV INTERNAL_PORT=9090 INTERNAL_ADDRESS=127.0.0.1
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"]
# `exec`: gunicorn, not the shell, is PID 1 and receives `docker stop`'s SIGTERM.
CMD ["sh", "-c", "exec gunicorn --bind 0.0.0.0:$PORT --bind $INTERNAL_ADDRESS:$INTERNAL_PORT --workers 2 'app:create_app()'"]

# Flower, for `docker compose --profile flower up` (the `flower` target): the same image
# with Flower added, so that it sees the tasks the way the worker does.
FROM app AS flower
USER root
COPY requirements-flower.txt /app/requirements-flower.txt
RUN pip install --no-cache-dir --require-hashes -r /app/requirements-flower.txt
USER service
CMD ["sh", "-c", "test -n \"$FLOWER_BASIC_AUTH\" || { echo 'error: set FLOWER_BASIC_AUTH to user:password' >&2; exit 2; }; exec celery -A celery_worker.celery flower --address=0.0.0.0 --port=5555"]

# `docker build .` builds the app, not Flower.
FROM app
