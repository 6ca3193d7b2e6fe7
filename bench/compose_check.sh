#!/usr/bin/env bash
# End-to-end check of the container image and deploy/compose.yaml on this machine (not part of
# `make test`; a few minutes):
#
#   1. a Debian bookworm base image from debootstrap + `docker import` (cached: kept between runs);
#   2. the roomrender image (Dockerfile, CPU flavor), and two stand-ins for images this machine
#      cannot pull: PostgreSQL 15 from Debian, and moto's S3 server (moto[server] from PyPI);
#      pip's CA bundle and index settings go in as BuildKit secrets, never into a layer;
#   3. deploy/compose.yaml + bench/compose_check/override.yaml (host networking, every service on
#      127.0.0.1) with an env file made from deploy/roomrender.env: PostgreSQL, the store, the
#      bucket and `roomrender db upgrade` one-shots, one API (`serve --workers 0`), N workers;
#   4. a key made inside the API container, jobs submitted through the API, one worker container
#      SIGKILLed (`docker kill`) while it holds a claim; every job must succeed exactly once, with
#      its images downloadable from the store (presigned URLs) and in the bucket;
#   5. everything torn down (also on failure or Ctrl-C). The images stay for the next run
#      (CHECK_REMOVE_IMAGES=1 removes all but the base, and the build cache).
#
# Needs root (debootstrap, and dockerd when none is running) or, once the base image exists, the
# docker group; python3 (standard library only) on the host.
#
# Settings (environment): CHECK_JOBS (80), CHECK_WORKERS (2), CHECK_PG_PORT (55432),
# CHECK_S3_PORT (59000), CHECK_API_PORT (58000), CHECK_BASE_IMAGE (roomrender-base:bookworm),
# CHECK_IMAGE (roomrender:cpu), CHECK_REMOVE_IMAGES (0), DOCKER (the docker client),
# DEBIAN_SUITE (bookworm). If no docker daemon answers and this runs as root, it starts dockerd
# (--iptables=false --bridge=none: builds and containers use the host's network) and stops it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HELPER="python3 $ROOT/bench/compose_check.py"
JOBS=${CHECK_JOBS:-80}
WORKERS=${CHECK_WORKERS:-2}
PG_PORT=${CHECK_PG_PORT:-55432}
S3_PORT=${CHECK_S3_PORT:-59000}
API_PORT=${CHECK_API_PORT:-58000}
BASE_IMAGE=${CHECK_BASE_IMAGE:-roomrender-base:bookworm}
IMAGE=${CHECK_IMAGE:-roomrender:cpu}
SUITE=${DEBIAN_SUITE:-bookworm}
PROJECT=roomrender-check
WORK=$(mktemp -d /tmp/roomrender-compose-check.XXXXXX)
STARTED_DOCKERD=
COMPOSE_STARTED=
declare -A FIGURES=()
ORDER=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
figure() { FIGURES[$1]=$2; ORDER+=("$1"); log "$1: $2"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$COMPOSE_STARTED" ]; then
        if [ "$rc" != 0 ]; then
            log "logs of the deployment: $WORK/compose.log"
            timeout 60 "${COMPOSE[@]}" logs --no-color --tail 200 > "$WORK/compose.log" 2>&1 || true
        fi
        log "tearing the deployment down"
        timeout 180 "${COMPOSE[@]}" down -v --remove-orphans --timeout 10 >/dev/null 2>&1 \
            || log "compose down failed; see: docker ps -a --filter label=com.docker.compose.project=$PROJECT"
    fi
    if [ "${CHECK_REMOVE_IMAGES:-0}" = 1 ]; then
        log "removing the images (all but $BASE_IMAGE) and the build cache"
        timeout 120 "$DOCKER" image rm "$IMAGE" roomrender-check/postgres roomrender-check/moto \
            >/dev/null 2>&1 || true
        timeout 300 "$DOCKER" builder prune -af >/dev/null 2>&1 || true
    fi
    if [ -n "$STARTED_DOCKERD" ]; then
        log "stopping the dockerd this check started"
        kill "$STARTED_DOCKERD" 2>/dev/null || true
        timeout 60 tail --pid="$STARTED_DOCKERD" -f /dev/null || true
    fi
    rm -rf "$WORK/rootfs"
    if [ "$rc" = 0 ]; then rm -rf "$WORK"; else log "kept $WORK for inspection"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- docker, BuildKit, compose
pick_docker() {
    local candidate version
    for candidate in ${DOCKER:-} docker /usr/bin/docker; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" buildx version >/dev/null 2>&1; then DOCKER=$candidate; return; fi
        # Clients before 23.0 build with BuildKit themselves (DOCKER_BUILDKIT=1); later ones
        # need the buildx plugin.
        version=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null || true)
        if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ] 2>/dev/null; then
            DOCKER=$candidate; export DOCKER_BUILDKIT=1; return
        fi
    done
    die "no docker client that can build with BuildKit (install buildx, or Debian's docker.io)"
}

ensure_daemon() {
    if timeout 20 "$DOCKER" info >/dev/null 2>&1; then return; fi
    [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null \
        || die "no docker daemon answers, and dockerd cannot be started here"
    log "starting dockerd (host networking only: --iptables=false --bridge=none)"
    dockerd --iptables=false --ip6tables=false --bridge=none > "$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD=$!
    for _ in $(seq 60); do
        timeout 5 "$DOCKER" info >/dev/null 2>&1 && return
        sleep 1
    done
    die "dockerd did not start: $WORK/dockerd.log"
}

pick_compose() {
    if timeout 20 "$DOCKER" compose version >/dev/null 2>&1; then
        COMPOSE=("$DOCKER" compose)
    elif command -v docker-compose >/dev/null && timeout 20 docker-compose version >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
    else
        die "neither 'docker compose' nor docker-compose (Debian: apt-get install docker-compose)"
    fi
    COMPOSE_VERSION="${COMPOSE[*]} $(timeout 20 "${COMPOSE[@]}" version --short 2>/dev/null | awk 'NR == 1')"
}

# deploy/compose.yaml + the override, merged by compose itself, minus the published ports (host
# networking refuses them; every service listens on 127.0.0.1 anyway).
merge_compose() {
    timeout 60 "${COMPOSE[@]}" -p "$PROJECT" -f "$ROOT/deploy/compose.yaml" \
        -f "$ROOT/bench/compose_check/override.yaml" config > "$WORK/compose.merged.yaml" \
        || die "compose config failed"
    $HELPER strip-ports "$WORK/compose.merged.yaml" "$WORK/compose.yaml"
    COMPOSE+=(-p "$PROJECT" -f "$WORK/compose.yaml" --profile preview)
}

# ---------------------------------------------------------------- images
build_base() {
    if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        figure "base image" "$BASE_IMAGE (cached)"
        return
    fi
    command -v debootstrap >/dev/null || die "debootstrap is needed (apt-get install debootstrap)"
    local mirror start rootfs=$WORK/rootfs
    $HELPER apt-sources > "$WORK/debian.sources"
    mirror=$(sed -n 's/^URIs: //p' "$WORK/debian.sources" | grep -v -- '-security' | awk 'NR == 1')
    log "debootstrap --variant=minbase $SUITE from $mirror"
    start=$(now)
    timeout 900 debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$WORK/debootstrap.log" 2>&1 \
        || die "debootstrap failed: $WORK/debootstrap.log"
    # Slim like debian:bookworm-slim: the same archives as this machine, no docs, no apt caches.
    rm -f "$rootfs/etc/apt/sources.list"
    cp "$WORK/debian.sources" "$rootfs/etc/apt/sources.list.d/debian.sources"
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
    echo 'APT::Install-Recommends "false";' > "$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
    find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
        "$rootfs"/tmp/*
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    tar -C "$rootfs" --numeric-owner -c . \
        | timeout 600 "$DOCKER" import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    figure "base image" "$BASE_IMAGE: debootstrap + import in $(since "$start") s"
}

pip_secrets() {
    local ca
    ca=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
    [ -n "$ca" ] || ca=${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-}}
    SECRETS=()
    PIP_CA=
    if [ -n "$ca" ] && [ -s "$ca" ]; then SECRETS+=(--secret "id=pip-ca,src=$ca"); PIP_CA=$ca; fi
    log "pip index for builds: $($HELPER pip-conf "$WORK/pip.conf")${ca:+, CA bundle $ca}"
    if [ "$(wc -l < "$WORK/pip.conf")" -gt 1 ]; then SECRETS+=(--secret "id=pip.conf,src=$WORK/pip.conf"); fi
}

build() {  # build NAME CONTEXT DOCKERFILE TAG [args...]
    local name=$1 context=$2 dockerfile=$3 tag=$4 start
    shift 4
    start=$(now)
    log "building $tag"
    timeout 1800 "$DOCKER" build --network host --progress plain "${SECRETS[@]}" \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" -f "$dockerfile" -t "$tag" "$@" "$context" \
        > "$WORK/build-$name.log" 2>&1 || { tail -40 "$WORK/build-$name.log" >&2; die "build of $tag failed"; }
    local cached
    cached=$(grep -c ' CACHED$' "$WORK/build-$name.log" || true)
    figure "build $tag" "$(since "$start") s (${cached} steps cached)"
}

# The CA bundle went in as a secret: none of its certificates that are not public roots (this
# machine's ca-certificates package, the image's bundle) may be anywhere in the image's files:
# that is a proxy's own CA.
no_ca_in_image() {
    [ -n "${PIP_CA:-}" ] || return 0
    local box
    box=$("$DOCKER" create "$IMAGE")
    "$DOCKER" cp "$box:/etc/ssl/certs/ca-certificates.crt" "$WORK/image-ca.crt"
    cat /usr/share/ca-certificates/*/*.crt > "$WORK/public-ca.crt" 2>/dev/null || true
    local verdict
    verdict=$("$DOCKER" export "$box" | $HELPER no-ca "$PIP_CA" "$WORK/image-ca.crt" "$WORK/public-ca.crt") \
        || { "$DOCKER" rm "$box" >/dev/null; die "a CA certificate of the build secret is in the image: $verdict"; }
    "$DOCKER" rm "$box" >/dev/null
    figure "CA bundle not in the image" "$verdict"
}

size_of() { "$DOCKER" image inspect -f '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# ---------------------------------------------------------------- the deployment
psql_q() {  # one query against the deployment's PostgreSQL, unaligned output
    "$DOCKER" exec "$PG" psql -X -At -F ' ' -U roomrender -d roomrender -c "$1"
}

make_env_file() {
    ENV_FILE=$WORK/check.env
    cp "$ROOT/deploy/roomrender.env" "$ENV_FILE"
    local db_password secret
    db_password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    set_env POSTGRES_PASSWORD "$db_password"
    set_env PGPORT "$PG_PORT"
    set_env ROOMRENDER_DATABASE_URL "postgresql+psycopg://roomrender:$db_password@127.0.0.1:$PG_PORT/roomrender"
    set_env AWS_ENDPOINT_URL "http://127.0.0.1:$S3_PORT"
    set_env ROOMRENDER_STORAGE_URL "s3://roomrender-check/files"
    set_env ROOMRENDER_HOST 127.0.0.1
    set_env ROOMRENDER_PORT "$API_PORT"
    set_env ROOMRENDER_PUBLIC_BASE_URL "http://127.0.0.1:$API_PORT"
    set_env ROOMRENDER_SECRET_KEY "$secret"
    # A killed worker's jobs run again after the lease: short, so the check is quick.
    set_env ROOMRENDER_LEASE_SECONDS 10
    set_env ROOMRENDER_HEARTBEAT_SECONDS 2
}

set_env() {
    if grep -q "^$1=" "$ENV_FILE"; then sed -i "s|^$1=.*|$1=$2|" "$ENV_FILE"; else echo "$1=$2" >> "$ENV_FILE"; fi
}

check_ports() {
    local port
    for port in "$PG_PORT" "$S3_PORT" "$API_PORT"; do
        python3 -c 'import socket, sys; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null \
            || die "port $port on 127.0.0.1 is taken (set CHECK_PG_PORT / CHECK_S3_PORT / CHECK_API_PORT)"
    done
}

container_of() { "${COMPOSE[@]}" ps -q "$1" | awk 'NR == 1'; }

main() {
    LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
    pick_docker
    ensure_daemon
    pick_compose
    figure "docker" "$("$DOCKER" version --format 'client {{.Client.Version}}, daemon {{.Server.Version}}') ($DOCKER${DOCKER_BUILDKIT:+, DOCKER_BUILDKIT=1}); compose: $COMPOSE_VERSION"
    check_ports

    build_base
    pip_secrets
    build roomrender "$ROOT" "$ROOT/Dockerfile" "$IMAGE"
    build postgres "$ROOT/bench/compose_check" "$ROOT/bench/compose_check/postgres.Dockerfile" roomrender-check/postgres
    build moto "$ROOT/bench/compose_check" "$ROOT/bench/compose_check/moto.Dockerfile" roomrender-check/moto
    figure "image sizes" "$BASE_IMAGE $(size_of "$BASE_IMAGE"), $IMAGE $(size_of "$IMAGE"), roomrender-check/postgres $(size_of roomrender-check/postgres), roomrender-check/moto $(size_of roomrender-check/moto)"
    no_ca_in_image
    "$DOCKER" run --rm --network none --entrypoint sh "$IMAGE" -c \
        'test "$(id -u)" = 10001 && ! ls /run/secrets 2>/dev/null | grep -q . && roomrender --help >/dev/null' \
        || die "the image does not run roomrender as uid 10001 without secrets"
    "$DOCKER" run --rm --network none --entrypoint python "$IMAGE" -c \
        'from roomrender.samples import room_photo; import sys; sys.stdout.buffer.write(room_photo(1280, 960))' \
        > "$WORK/room.jpg"

    make_env_file
    export ROOMRENDER_ENV_FILE=$ENV_FILE ROOMRENDER_IMAGE=$IMAGE CHECK_S3_PORT=$S3_PORT
    export ROOMRENDER_MODELS_PATH=$WORK/models
    mkdir -p "$WORK/models"
    merge_compose

    local start base="http://127.0.0.1:$API_PORT"
    log "compose up: postgres, s3, bucket, migrate, api, $WORKERS workers"
    start=$(now)
    COMPOSE_STARTED=1
    timeout 300 "${COMPOSE[@]}" up -d --scale "worker=$WORKERS" > "$WORK/compose-up.log" 2>&1 \
        || { cat "$WORK/compose-up.log" >&2; die "compose up failed"; }
    local up_seconds
    up_seconds=$(since "$start")
    $HELPER wait-ready "$base/readyz" 120 > /dev/null || die "the API never became ready"
    figure "deployment answering" "$(since "$start") s from 'compose up' to GET /readyz 200 (compose up returned after ${up_seconds} s)"
    PG=$(container_of postgres)
    local api
    api=$(container_of api)
    figure "migration" "$("$DOCKER" logs "$(container_of migrate)" 2>&1 | tail -1)"

    local key
    key=$("$DOCKER" exec "$api" roomrender keys create --name compose-check | tail -1)
    [[ "$key" == rr_* ]] || die "no key from 'roomrender keys create': $key"

    start=$(now)
    $HELPER submit "$base" "$key" "$WORK/room.jpg" "$JOBS" "$WORK/jobs.json" >&2

    # The victim: a worker container that holds a claim (running jobs) once a fifth of the jobs
    # are done. Its worker id is in its log ("worker ID serving ..."). Should its batch end
    # between the look and the kill, it is started again and the next claim is taken.
    local victim victim_id held="" tries kills=0
    victim=$(container_of worker)
    while [ -z "$held" ] && [ "$kills" -lt 3 ]; do
        victim_id=""
        for tries in $(seq 100); do
            victim_id=$("$DOCKER" logs "$victim" 2>&1 | sed -n 's/.*worker \([^ ]*\) serving.*/\1/p' | tail -1)
            [ -n "$victim_id" ] && break
            sleep 0.2
        done
        [ -n "$victim_id" ] || die "no worker id in the logs of $victim"
        for tries in $(seq 600); do
            if [ "$(psql_q "select count(*) from jobs where status = 'succeeded'")" -ge $((JOBS / 5)) ] \
                && [ "$(psql_q "select count(*) from jobs where status = 'running' and lease_owner = '$victim_id'")" -gt 0 ]; then
                "$DOCKER" kill "$victim" >/dev/null
                kills=$((kills + 1))
                held=$(psql_q "select id from jobs where status = 'running' and lease_owner = '$victim_id' order by id")
                break
            fi
            sleep 0.1
        done
        if [ -z "$held" ] && [ "$kills" -gt 0 ]; then
            log "worker $victim_id had just finished its batch when killed; starting it again"
            "$DOCKER" start "$victim" >/dev/null
        elif [ -z "$held" ]; then
            die "worker $victim_id never held a claim"
        fi
    done
    [ -n "$held" ] || die "no kill caught worker $victim_id holding a claim"
    local done_at_kill
    done_at_kill=$(psql_q "select count(*) from jobs where status = 'succeeded'")
    echo "$held" > "$WORK/held.txt"
    figure "kill" "docker kill (try $kills) of worker $victim_id while it held $(wc -l < "$WORK/held.txt") running jobs ($done_at_kill of $JOBS done)"

    local result
    result=$($HELPER wait-done "$base" "$key" "$WORK/jobs.json" 300) \
        || { echo "$result" >&2; die "not every job succeeded with its images"; }
    figure "jobs" "$result (wall time from the first submit: $(since "$start") s)"

    # Exactly once: one success, one adopted output row per image, and only the killed worker's
    # jobs ran twice. Then every adopted output is in the bucket.
    psql_q "select id, attempts, status from jobs order by id" > "$WORK/attempts.txt"
    psql_q "select job_id, count(*) from files where kind = 'output' and job_id is not null group by job_id" > "$WORK/outputs.txt"
    psql_q "select key from files where kind = 'output' and job_id is not null" > "$WORK/output_keys.txt"
    "$DOCKER" exec "$api" python -c '
import os, boto3
from urllib.parse import urlparse
url = urlparse(os.environ["ROOMRENDER_STORAGE_URL"]); prefix = url.path.strip("/") + "/"
pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=url.netloc, Prefix=prefix)
for page in pages:
    for item in page.get("Contents", []):
        print(item["Key"][len(prefix):])' > "$WORK/bucket.txt"
    local verdict
    verdict=$(python3 - "$WORK" <<'EOF'
import json, sys
work = sys.argv[1]
jobs = {job["id"]: job for job in json.load(open(f"{work}/jobs.json"))}
held = set(open(f"{work}/held.txt").read().split())
rows = [line.split() for line in open(f"{work}/attempts.txt") if line.strip()]
outputs = dict(line.split() for line in open(f"{work}/outputs.txt") if line.strip())
adopted = set(open(f"{work}/output_keys.txt").read().split())
bucket = set(open(f"{work}/bucket.txt").read().split())
problems = []
if {row[0] for row in rows} != set(jobs):
    problems.append("the jobs table does not hold exactly the submitted jobs")
for job_id, attempts, status in rows:
    if status != "succeeded":
        problems.append(f"{job_id} {status}")
    if int(outputs.get(job_id, 0)) != jobs[job_id]["n"]:
        problems.append(f"{job_id}: {outputs.get(job_id, 0)} output rows, expected {jobs[job_id]['n']}")
reran = {row[0] for row in rows if int(row[1]) > 1}
if reran != held:
    problems.append(f"ran more than once: {sorted(reran)}; held by the killed worker: {sorted(held)}")
missing = adopted - bucket
if missing:
    problems.append(f"{len(missing)} adopted outputs missing from the bucket")
outputs_in_bucket = {key for key in bucket if key.startswith("out-")}
print(json.dumps({"jobs": len(rows), "succeeded": sum(row[2] == "succeeded" for row in rows),
                  "with_exactly_their_output_rows": sum(int(outputs.get(r[0], 0)) == jobs[r[0]]["n"] for r in rows),
                  "ran_again": len(reran), "held_by_killed_worker": len(held),
                  "adopted_outputs": len(adopted), "in_bucket": len(adopted & bucket),
                  "unadopted_outputs_in_bucket": len(outputs_in_bucket - adopted),
                  "problems": problems[:10]}))
sys.exit(1 if problems else 0)
EOF
) || { echo "$verdict" >&2; die "exactly-once check failed"; }
    figure "exactly once" "$verdict"
    figure "killed container" "$("$DOCKER" inspect -f '{{.State.Status}} (exit {{.State.ExitCode}}, restarts {{.RestartCount}})' "$victim")"
    local survivor
    survivor=$("${COMPOSE[@]}" ps -q worker | grep -v "^$victim" | awk 'NR == 1')
    figure "health" "api $("$DOCKER" inspect -f '{{.State.Health.Status}}' "$api"), surviving worker $("$DOCKER" inspect -f '{{.State.Health.Status}}' "$survivor"), postgres $("$DOCKER" inspect -f '{{.State.Health.Status}}' "$PG")"

    echo
    echo "== bench/compose_check.sh on $(uname -m), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "   load average at the start: $LOAD_START, at the end: $(cut -d" " -f1-3 /proc/loadavg)"
    for name in "${ORDER[@]}"; do printf -- '- %s: %s\n' "$name" "${FIGURES[$name]}"; done
}

main "$@"
