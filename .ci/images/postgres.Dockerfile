# PostgreSQL from Debian's package, for machines that cannot pull the official `postgres` image.
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/*
# The package created the cluster "main". Here it listens on every address, takes passwords
# (scram-sha-256) from any client, and holds the tests' user and database: "test", password
# "test", as the official image makes from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB.
# Version-free paths, so that CMD names no major version.
RUN version=$(ls /usr/lib/postgresql) \
    && ln -s /usr/lib/postgresql/"$version"/bin/postgres /usr/local/bin/postgres \
    && ln -s /etc/postgresql/"$version"/main /etc/postgresql/cluster \
    && echo "listen_addresses = '*'" >> /etc/postgresql/cluster/postgresql.conf \
    && echo "host all all all scram-sha-256" >> /etc/postgresql/cluster/pg_hba.conf \
    && pg_ctlcluster "$version" main start \
    && su postgres -c "psql -q -c \"CREATE USER test PASSWORD 'test'\" && createdb -O test test" \
    && pg_ctlcluster "$version" main stop
EXPOSE 5432
# The server itself is PID 1 (no pg_ctlcluster or su wrapper), so it receives the stop
# signal. SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to
# disconnect; like the official image, `docker stop` sends SIGINT instead ("fast"
# shutdown: clients are disconnected, the data flushed), so it stops at once.
STOPSIGNAL SIGINT
USER postgres
CMD ["postgres", "-c", "config_file=/etc/postgresql/cluster/postgresql.conf"]
