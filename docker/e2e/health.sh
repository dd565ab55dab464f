#!/usr/bin/env bash
# docker/e2e/health.sh -- `HEALTHCHECK CMD ["/pyinit", "health"]` in a real
# Docker container: the health status goes `starting` -> `healthy` once
# gunicorn answers its http readiness probe, and `unhealthy` when the worker
# process is in back-off, as `docker inspect` shows; `pyinit status` and
# `pyinit ctl` work through `docker exec`. Skips (exit 0) without a daemon or
# without the base image; E2E_REQUIRE=1 makes that a failure.
#
# The base image needs python3 and gunicorn: E2E_HEALTH_BASE if set, else
# run.sh's cached runc rootfs (target/e2e-rootfs, imported with `docker
# import`, so no registry is needed), else pyinit-e2e (built by docker.sh).
# This script adds the freshly built static pyinit, docker/e2e/app, a config
# and the HEALTHCHECK on top. E2E_PYINIT=PATH tests that static binary
# instead of building one.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
ROOTFS=$REPO/target/e2e-rootfs
BASE=${E2E_HEALTH_BASE:-}
IMAGE=pyinit-e2e-health-$$
NAME=pyinit-e2e-health-$$
TMP=$(mktemp -d)

skip() {
    if [[ ${E2E_REQUIRE:-0} == 1 ]]; then echo "ERROR: $*" >&2; exit 1; fi
    echo "SKIP: $*"
    exit 0
}
command -v docker >/dev/null || skip "no docker client"
timeout 20 docker info >/dev/null 2>&1 || skip "no Docker daemon reachable"
imported=
if [[ -z $BASE && -f $ROOTFS/complete ]]; then
    BASE=pyinit-e2e-health-base-$$
    tar -C "$ROOTFS/rootfs" -c . | timeout 300 docker import - "$BASE" >/dev/null
    imported=$BASE
fi
BASE=${BASE:-pyinit-e2e}
timeout 20 docker image inspect "$BASE" >/dev/null 2>&1 \
    || skip "no base image: run docker/e2e/run.sh (its rootfs) or docker/e2e/docker.sh first"

cleanup() {
    local rc=$?
    timeout 30 docker rm -f "$NAME" >/dev/null 2>&1 || true
    timeout 30 docker rmi -f "$IMAGE" $imported >/dev/null 2>&1 || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

if [[ -n ${E2E_PYINIT:-} ]]; then
    cp "$E2E_PYINIT" "$TMP/pyinit"
else
    "$REPO/scripts/build-static.sh" >/dev/null
    cp "$REPO/target/x86_64-unknown-linux-gnu/release/pyinit" "$TMP/pyinit"
fi
cat >"$TMP/pyinit.toml" <<'EOF'
[process.web]
command = ["gunicorn", "-b", "127.0.0.1:8000", "-w", "1", "--chdir", "/app", "app:app"]
ready = { http = "http://127.0.0.1:8000/" }

# Sleeps until /tmp/crash exists; from then on every start exits 1.
[process.worker]
command = ["sh", "-c", "test -e /tmp/crash && exit 1; exec sleep 1000"]
restart = "always"
backoff = "60s"
EOF
cp -r "$HERE/app" "$TMP/app"
cat >"$TMP/Dockerfile" <<EOF
FROM $BASE
COPY app/ /app/
COPY pyinit /pyinit
COPY pyinit.toml /etc/pyinit.toml
HEALTHCHECK --interval=1s --timeout=3s --retries=1 CMD ["/pyinit", "health"]
ENTRYPOINT ["/pyinit", "--config", "/etc/pyinit.toml"]
EOF
timeout 600 docker build -q -t "$IMAGE" "$TMP" >/dev/null

health() { docker inspect --format '{{.State.Health.Status}}' "$NAME"; }
last_output() { docker inspect --format '{{with .State.Health}}{{range .Log}}{{.ExitCode}}: {{.Output}}{{end}}{{end}}' "$NAME" | tail -3; }
# wait_for STATUS SECONDS
wait_for() {
    local want=$1 end=$((SECONDS + $2)) now
    while :; do
        now=$(health)
        [[ $now == "$want" ]] && return 0
        if ((SECONDS >= end)); then
            echo "FAIL: health is '$now', never '$want' within $2 s; last probes:" >&2
            last_output >&2
            docker logs "$NAME" 2>&1 | tail -20 >&2
            return 1
        fi
        sleep 0.2
    done
}

fail=0
timeout 60 docker run -d --name "$NAME" --network none "$IMAGE" >/dev/null
first=$(health)
echo "right after start: $first"
[[ $first == starting ]] || { echo "FAIL: expected starting, got $first" >&2; fail=1; }
wait_for healthy 30 && echo "healthy once gunicorn answers" || fail=1
docker exec "$NAME" /pyinit status || fail=1

docker exec "$NAME" touch /tmp/crash
docker exec "$NAME" /pyinit ctl restart worker || fail=1
wait_for unhealthy 30 && echo "unhealthy with the worker in back-off" || fail=1
out=$(docker exec "$NAME" /pyinit health || true)
echo "pyinit health: $out"
[[ $out == "worker: backoff after exit 1, restart "* ]] || { echo "FAIL: unexpected health output" >&2; fail=1; }

docker exec "$NAME" rm /tmp/crash
docker exec "$NAME" /pyinit ctl start worker || fail=1
wait_for healthy 30 && echo "healthy again after ctl start" || fail=1

if ((fail)); then
    echo "FAIL: docker health scenario"
    exit 1
fi
echo "PASS: docker HEALTHCHECK starting -> healthy -> unhealthy -> healthy"
