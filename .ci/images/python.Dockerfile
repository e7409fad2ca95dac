# Python 3.11 with venv from Debian's packages: a base for the app's Dockerfile on machines
# that cannot pull the official `python` image (docker build --build-arg BASE=...).
# It trusts the building machine's certificate authorities (ca-certificates.crt in the
# build context), so pip works behind the same TLS-inspecting proxy as the machine.
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /usr/local/share/machine-ca-certificates.crt
ENV PIP_CERT=/usr/local/share/machine-ca-certificates.crt
