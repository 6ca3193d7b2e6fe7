# The roomrender image: one image for every role (API, worker, webhook dispatcher, migrations).
#
#   docker build -t roomrender:cpu .                            # preview engine (no torch, no GPU)
#   docker build -t roomrender:cuda --build-arg FLAVOR=cuda .   # + the diffusers engine, CUDA torch
#
# FLAVOR=cuda installs TORCH_SPEC first, then `.[diffusers]`. With TORCH_INDEX empty torch comes
# from PyPI, whose Linux x86_64 torch 2.13.0 is the CUDA 13.0 build (NVIDIA driver 580+); for an
# older driver, give a download.pytorch.org index of an older CUDA (e.g. .../whl/cu126). Run it with `--gpus` (NVIDIA Container Toolkit);
# the CUDA runtime comes in torch's wheels, the driver from the host.
#
# pip settings for the build (a private index, a proxy's CA bundle) go in as BuildKit secrets,
# which are mounted for one RUN and never written to a layer:
#   DOCKER_BUILDKIT=1 docker build --secret id=pip.conf,src=$HOME/.config/pip/pip.conf \
#     --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt -t roomrender:cpu .
#
# Nothing large is baked in: model weights are mounted at /models (ROOMRENDER_MODELS_DIR),
# torch.compile's cache lives in /var/cache/roomrender (mount a volume there), and data (SQLite,
# local files, the generated secret) in /var/lib/roomrender. See docs/deploy.md, "Containers".
# No `# syntax=` line on purpose: the Dockerfile frontend built into the daemon is used, so a
# build needs no registry.

# Any Debian bookworm (python3 is 3.11): debian:bookworm-slim, or a local `docker import` of a
# debootstrap (bench/compose_check.sh makes one).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG FLAVOR=cpu
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/roomrender
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN --mount=type=secret,id=pip.conf --mount=type=secret,id=pip-ca \
    --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    if [ -s /run/secrets/pip.conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip.conf; fi; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    pip=/opt/roomrender/bin/pip; \
    "$pip" install --upgrade pip; \
    case "$FLAVOR" in \
      cpu) "$pip" install . ;; \
      cuda) if [ -n "$TORCH_INDEX" ]; then "$pip" install --index-url "$TORCH_INDEX" "$TORCH_SPEC"; \
            else "$pip" install "$TORCH_SPEC"; fi; \
            "$pip" install ".[diffusers]" ;; \
      *) echo "FLAVOR must be cpu or cuda, not '$FLAVOR'" >&2; exit 2 ;; \
    esac; \
    "$pip" check

FROM ${BASE_IMAGE} AS runtime
ARG FLAVOR=cpu
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --system --gid 10001 roomrender \
 && useradd --system --uid 10001 --gid roomrender --home-dir /var/lib/roomrender \
      --no-create-home --shell /usr/sbin/nologin roomrender \
 && install -d -o roomrender -g roomrender /var/lib/roomrender /var/cache/roomrender /models
COPY --from=build /opt/roomrender /opt/roomrender
LABEL org.opencontainers.image.title=roomrender io.roomrender.flavor=${FLAVOR}
COPY deploy/docker/healthcheck.py /usr/local/bin/roomrender-healthcheck
COPY deploy/docker/create_bucket.py /usr/local/bin/roomrender-create-bucket
ENV PATH=/opt/roomrender/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROOMRENDER_DATA_DIR=/var/lib/roomrender \
    ROOMRENDER_HOST=0.0.0.0 \
    ROOMRENDER_PORT=8000 \
    ROOMRENDER_PUBLIC_BASE_URL=http://localhost:8000 \
    ROOMRENDER_MODELS_DIR=/models \
    TORCHINDUCTOR_CACHE_DIR=/var/cache/roomrender/torch-compile \
    HF_HUB_OFFLINE=1
USER 10001:10001
WORKDIR /var/lib/roomrender
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["roomrender-healthcheck", "/healthz"]
ENTRYPOINT ["roomrender"]
# API + one in-process worker on SQLite in /var/lib/roomrender; compose runs `serve --workers 0`
# and `worker` apart.
CMD ["serve"]
