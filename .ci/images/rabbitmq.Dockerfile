# RabbitMQ from Debian's package, for machines that cannot pull the official `rabbitmq` image.
ARG BASE=local/debian:bookworm
FROM ${BASE}
# Debian lets `guest` log in from localhost only; through a published port the login comes
# from the bridge network. The official image ships the same setting.
RUN apt-get update && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && echo 'loopback_users = none' > /etc/rabbitmq/rabbitmq.conf
EXPOSE 5672
# The node's own start script, not Debian's /usr/sbin wrapper (which runs it through `su`):
# as PID 1 it passes SIGTERM on, so `docker stop` and `docker restart` stop the broker
# cleanly in about a second instead of killing it after the 10 s grace period.
USER rabbitmq
ENV HOME=/var/lib/rabbitmq
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
