#!/usr/bin/env bash
# docker/e2e/docker.sh -- run.sh's scenarios against a real Docker daemon:
# `docker run` / `docker stop` with the test image of docker/e2e/Dockerfile.
# Skips (exit 0) when no daemon answers; E2E_REQUIRE=1 makes that a failure.
#
# pyinit comes from the repo's docker/Dockerfile when it exists (an image with
# the static binary at E2E_PYINIT_PATH, default /pyinit), else from a host
# `cargo build` with +crt-static; E2E_PYINIT_FROM=host forces the latter.
# E2E_STOP_TIMEOUT (10), E2E_CONTRAST_TIMEOUT (3), E2E_LINES (5000) as in run.sh.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
STOP_TIMEOUT=${E2E_STOP_TIMEOUT:-10}
CONTRAST_TIMEOUT=${E2E_CONTRAST_TIMEOUT:-3}
N_LINES=${E2E_LINES:-5000}
WORKERS=3
IMAGE=pyinit-e2e
TMP=$(mktemp -d)
NAMES=()
RESULTS=()
FAILED=()
WHY=()

skip() {
    if [[ ${E2E_REQUIRE:-0} == 1 ]]; then echo "ERROR: $*" >&2; exit 1; fi
    echo "SKIP: $*"
    exit 0
}
command -v docker >/dev/null || skip "no docker client; use docker/e2e/run.sh (runc) instead"
timeout 20 docker info >/dev/null 2>&1 \
    || skip "no Docker daemon reachable (docker info failed); docker/e2e/run.sh runs the same scenarios with runc"
command -v python3 >/dev/null || skip "python3 is needed on the host for the line checker"

cleanup() {
    local rc=$? n
    for n in "${NAMES[@]}"; do timeout 30 docker rm -f "$n" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
lt_s() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
ge_s() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
check() { local what=$1; shift; "$@" || WHY+=("$what"); }
eq() { [[ $1 == "$2" ]]; }
has() { grep -qE -- "$2" "$1"; }
hasnt() { ! grep -qE -- "$2" "$1"; }

# ---------------------------------------------------------------- image
if [[ -f $REPO/docker/Dockerfile && ${E2E_PYINIT_FROM:-} != host ]]; then
    echo "building pyinit from docker/Dockerfile"
    timeout 1800 docker build -q -f "$REPO/docker/Dockerfile" -t pyinit-e2e-bin "$REPO" >/dev/null
else
    echo "building pyinit on the host (cargo, +crt-static)"
    (cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" timeout 900 \
        cargo build --quiet --release --target x86_64-unknown-linux-gnu --bin pyinit)
    cp "$REPO/target/x86_64-unknown-linux-gnu/release/pyinit" "$TMP/pyinit"
    printf 'FROM scratch\nCOPY pyinit /pyinit\n' >"$TMP/Dockerfile"
    timeout 300 docker build -q -t pyinit-e2e-bin "$TMP" >/dev/null
fi
echo "building $IMAGE from docker/e2e/Dockerfile"
timeout 1800 docker build -q --build-arg PYINIT_IMAGE=pyinit-e2e-bin \
    --build-arg "PYINIT_PATH=${E2E_PYINIT_PATH:-/pyinit}" -t "$IMAGE" "$HERE" >/dev/null

# ---------------------------------------------------------------- helpers
# start NAME [docker run options] -- [args after the image]: sets NAME.
start() {
    NAME=pyinit-e2e-$$-$1
    shift
    local opts=()
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    NAMES+=("$NAME")
    timeout 60 docker run -d --name "$NAME" --network none "${opts[@]}" "$IMAGE" "$@" >/dev/null
}
logs() { timeout 30 docker logs "$NAME" >"$TMP/$NAME.out" 2>"$TMP/$NAME.err" || true; }
running() { [[ $(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null) == true ]]; }
# wait_log STREAM ERE COUNT SECONDS
wait_log() {
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        logs
        (($(grep -cE -- "$2" "$TMP/$NAME.$1" || true) >= $3)) && return 0
        running || return 1
        sleep 0.1
    done
    return 1
}
# docker_stop TIMEOUT: sets STATUS, STOP_S (from `docker stop` to the
# container's State.FinishedAt, so the CLI's own overhead is left out), CLI_S
# (until `docker stop` returned) and RUNTIME_KILL (docker stop had to SIGKILL:
# the container outlived the timeout and died of signal 9).
docker_stop() {
    local t0=$EPOCHREALTIME fin
    timeout $(($1 + 30)) docker stop -t "$1" "$NAME" >/dev/null
    CLI_S=$(secs "$t0" "$EPOCHREALTIME")
    STATUS=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
    fin=$(docker inspect -f '{{.State.FinishedAt}}' "$NAME")
    STOP_S=$(python3 -c '
import datetime, re, sys
m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", sys.argv[2])
t = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
print(f"{t.timestamp() + float(m[2] or 0) - float(sys.argv[1]):.3f}")
' "$t0" "$fin" 2>/dev/null || echo "$CLI_S")
    RUNTIME_KILL=no
    if ge_s "$STOP_S" "$1" && [[ $STATUS == 137 ]]; then RUNTIME_KILL=yes; fi
    logs
}
report() {
    if ((${#WHY[@]})); then
        RESULTS+=("FAIL  $1  $2: $3 -- failed: $(IFS=';'; echo "${WHY[*]}")")
        FAILED+=("$1")
        tail -n 12 "$TMP/$NAME.err" | cut -c1-200 | sed 's/^/    err| /'
    else
        RESULTS+=("PASS  $1  $2: $3")
    fi
    echo "${RESULTS[-1]}"
    WHY=()
    timeout 30 docker rm -f "$NAME" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- scenarios
# a. gunicorn under the image's ENTRYPOINT ["/pyinit", "--"]
start a -- gunicorn -w "$WORKERS" -b 127.0.0.1:8000 app:app
check "$WORKERS 'Booting worker' lines" wait_log err 'Booting worker with pid' "$WORKERS" 30
body=$(timeout 10 docker exec "$NAME" python3 -c \
    'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8000/").read().decode().strip())' \
    2>/dev/null || true)
check "HTTP GET 127.0.0.1:8000 inside the container" eq "${body%%=*}" pid
docker_stop "$STOP_TIMEOUT"
check "exit status 0 (got $STATUS)" eq "$STATUS" 0
check "no runtime KILL" eq "$RUNTIME_KILL" no
check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" 1
check "gunicorn shut down gracefully" has "$TMP/$NAME.err" 'Shutting down: Master'
report a "gunicorn -w $WORKERS under pyinit (docker stop -t $STOP_TIMEOUT)" \
    "HTTP ${body:-none}; exited $STOP_S s after docker stop (CLI: $CLI_S s), exit $STATUS"

# b. plain script; the rewrite comes from the environment (PYINIT_REWRITE)
start b -e PYINIT_REWRITE=TERM:INT -- python3 /app/plain.py
check "READY" wait_log out '^READY$' 1 30
docker_stop "$STOP_TIMEOUT"
check "finally: ran" has "$TMP/$NAME.out" '^cleanup done$'
check "exit status 130 (got $STATUS)" eq "$STATUS" 130
check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" 1
report b "plain script under pyinit (PYINIT_REWRITE=TERM:INT)" \
    "'cleanup done' printed; exited $STOP_S s after docker stop, exit $STATUS"

# c. TERM-ignoring app; grace from the environment (PYINIT_GRACE)
start c -e PYINIT_GRACE=2s -- python3 /app/ignore_term.py
check "READY" wait_log out '^READY$' 1 30
docker_stop "$STOP_TIMEOUT"
check "pyinit's grace report on stderr" has "$TMP/$NAME.err" 'grace period .*ran out; sent SIGKILL to'
check "exit status 137 (got $STATUS)" eq "$STATUS" 137
check "killed at pyinit's 2 s grace (took $STOP_S s)" ge_s "$STOP_S" 1.9
check "well before the runtime's $STOP_TIMEOUT s (took $STOP_S s)" lt_s "$STOP_S" 4
report c "TERM-ignoring app under pyinit (PYINIT_GRACE=2s, docker stop -t $STOP_TIMEOUT)" \
    "killed $STOP_S s after docker stop, exit $STATUS"

# d. every log line arrives (through pyinit, then Docker's json-file driver)
start d -- python3 /app/lines.py "$N_LINES"
for _ in $(seq 300); do
    timeout 10 docker exec "$NAME" test -e /out/written 2>/dev/null && break
    sleep 0.1
done
docker_stop "$STOP_TIMEOUT"
verdict=$(timeout 60 python3 "$HERE/check_lines.py" "$N_LINES" "$TMP/$NAME.out" "$TMP/$NAME.err") \
    || WHY+=("lines: $verdict")
check "exit status 143 (got $STATUS)" eq "$STATUS" 143
check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" 1
report d "$N_LINES log lines through pyinit, then stop" "$verdict; exited $STOP_S s after docker stop, exit $STATUS"

# e. contrast: python as PID 1, no init
start e --entrypoint python3 -e PYTHONUNBUFFERED=1 -- /app/plain.py
check "READY" wait_log out '^READY$' 1 30
docker_stop "$CONTRAST_TIMEOUT"
check "TERM ignored: runtime KILL needed" eq "$RUNTIME_KILL" yes
check "finally: did NOT run" hasnt "$TMP/$NAME.out" '^cleanup done$'
report e "contrast: python as PID 1 without pyinit (docker stop -t $CONTRAST_TIMEOUT, shortened to keep CI fast)" \
    "runtime KILL: $RUNTIME_KILL after $STOP_S s, exit $STATUS"

echo
echo "==== pyinit e2e under docker: summary ===="
printf '%s\n' "${RESULTS[@]}"
if ((${#FAILED[@]})); then echo "FAILED: ${FAILED[*]}"; exit 1; fi
echo "ALL PASSED"
