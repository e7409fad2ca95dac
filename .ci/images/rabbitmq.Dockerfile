# RabbitMQ from Debian's package, for machines that cannot pull the official `rabbitmq` image.
ARG BASE=local/debian:bookworm
FROM ${BASE}
# Debian lets `guest` log in from localhost only; through a published port the login comes
# from the bridge network. The official image ships the same setting.
RUN apt-get update && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'loopback_users = none' > /etc/rabbitmq/rabbitmq.conf
EXPOSE 5672
CMD ["rabbitmq-server"]
