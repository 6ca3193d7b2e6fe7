# moto's S3 server (moto[server] from PyPI, in-memory), the S3-compatible store of
# bench/compose_check.sh. pip's CA bundle and index settings are build secrets, as for the
# roomrender image: never in a layer.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG MOTO_SPEC=moto[server]>=5.0
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/moto
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca \
    set -eu; \
    if [ -s /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    /opt/moto/bin/pip install --no-cache-dir "$MOTO_SPEC"
USER 10001:10001
ENTRYPOINT ["/opt/moto/bin/moto_server"]
CMD ["-H", "0.0.0.0", "-p", "9000"]
