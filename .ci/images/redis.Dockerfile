# Redis from Debian's package, for machines that cannot pull the official `redis` image.
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 6379
# The package binds to localhost and refuses outside clients; a container must listen on
# its own interface for the published port to reach it.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
