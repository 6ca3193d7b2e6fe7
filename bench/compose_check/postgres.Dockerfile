# PostgreSQL 15 from Debian bookworm, for bench/compose_check.sh (this machine has no registry to
# pull postgres:16 from). Its entrypoint follows the official image's contract as far as
# deploy/compose.yaml uses it: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB on first start,
# PGDATA=/var/lib/postgresql/data, `postgres [options]` as the command, PGPORT honoured.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
