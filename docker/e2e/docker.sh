#!/usr/bin/env bash
# docker/e2e/docker.sh -- pyinit in real Docker, side by side with Docker's
# own init (`docker run --init`, which runs tini as PID 1).
#
# Builds every image the way a user would (no registry needed: the base image
# is imported from the Debian root file system docker/e2e/rootfs.sh caches):
#   pyinit-python-base   the rootfs (python3, venv, gunicorn), python:slim-like
#   pyinit               docker/Dockerfile: FROM scratch, only /pyinit
#   pyinit-gunicorn, pyinit-uvicorn, pyinit-procfile   docker/examples/*
#   pyinit-pip           docker/examples/pip: the wheel pip-installed in a venv
#   pyinit-e2e           docker/e2e/Dockerfile: the test apps in /app
# then runs each case under pyinit and under `docker run --init`:
#   gunicorn   docker run + docker stop -t 10: exit 0, no SIGKILL, time
#   uvicorn    the same for uvicorn --workers 2
#   ignore     an app that ignores SIGTERM: pyinit kills it at its 2 s grace,
#              before Docker's 10 s; Docker has to kill it under tini
#   logs       5,000 lines from 4 workers and 12 lines of 16 KiB+1 to 100 KB
#              through the json-file driver: whole lines in `docker logs`;
#              with --log-format json no record is split by Docker
#   repl       docker run -it python3: Ctrl-C gives KeyboardInterrupt, the
#              REPL goes on, Ctrl-D exits 0 (through a pty: docker_tty.py)
#   procfile, pip   pyinit only: the Procfile/TOML example stops cleanly; the
#              wheel's pyinit and `python -m pyinit` work in the image
# and prints a table (also written to target/e2e-docker/RESULTS.md).
#
# Exit 0 when every case passed. Without a Docker daemon it prints SKIP and
# exits 0 (E2E_REQUIRE=1 makes that a failure; scripts/test.sh sets it when
# `docker info` answers). A failing docker step prints the daemon's error
# (the last lines of its output) and the path of the full log, kept in
# target/e2e-docker/run-PID/.
#
# Environment: E2E_REQUIRE=1, E2E_ONLY="gunicorn logs" (some cases only),
# E2E_KEEP=1 (keep the logs of a passing run), E2E_REBUILD_BASE=1,
# E2E_MIRROR and E2E_REBUILD_ROOTFS (for rootfs.sh).
set -euo pipefail
export LC_ALL=C
# The classic builder: BuildKit would pull its Dockerfile frontend and
# helper images from a registry, and there is none here.
export DOCKER_BUILDKIT=0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
WORK=$REPO/target/e2e-docker
RUN=$WORK/run-$$
BASE=pyinit-python-base
E2E=pyinit-e2e
WORKERS=4
PER_WORKER=1250
STOP_TIMEOUT=10
T_START=$EPOCHREALTIME
NAMES=()
FAILED=()
declare -A CELL=()
DETAILS=()

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
log() { printf '[docker-e2e %6s s] %s\n' "$(secs "$T_START" "$EPOCHREALTIME")" "$*"; }
die() { log "ERROR: $*"; exit 1; }
skip() {
    if [[ ${E2E_REQUIRE:-0} == 1 ]]; then die "$* (E2E_REQUIRE=1)"; fi
    echo "SKIP: $*"
    exit 0
}

[[ $(uname -m) == x86_64 ]] || skip "x86_64 only (pyinit is built for x86_64-unknown-linux-gnu)"
command -v docker >/dev/null || skip "no docker client; docker/e2e/run.sh runs the stop cases with runc"
timeout 20 docker info >/dev/null 2>&1 \
    || skip "no Docker daemon answers (docker info failed); docker/e2e/run.sh runs the stop cases with runc"
command -v python3 >/dev/null || die "python3 is needed on the host (pty driver, log checker)"
mkdir -p "$RUN"

cleanup() {
    local rc=$? n
    for n in "${NAMES[@]}"; do timeout 30 docker rm -f "$n" >/dev/null 2>&1 || true; done
    if [[ $rc -eq 0 && ${E2E_KEEP:-0} != 1 ]]; then
        rm -rf "$RUN"
    else
        echo "logs kept in ${RUN#"$REPO"/}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME SECONDS COMMAND...: run a build step with its output in a log
# file; on failure show only the end of it (where the daemon's error is).
step() {
    local name=$1 limit=$2 t0=$EPOCHREALTIME rc=0
    shift 2
    timeout "$limit" "$@" </dev/null >"$RUN/$name.log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "FAILED: $name (exit $rc$([[ $rc -eq 124 ]] && echo ", timed out after $limit s")): $*"
        grep -v '^DEPRECATED\|^ *BuildKit is currently disabled\|^ *environment-variable\.\|^ *Install the buildx' \
            "$RUN/$name.log" | tail -n 8 | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-240 | sed 's/^/    | /'
        echo "    full output: ${RUN#"$REPO"/}/$name.log"
        exit 1
    fi
    log "$name: done in $(secs "$t0" "$EPOCHREALTIME") s"
}

# dk SECONDS ARGS...: one docker command; on failure print the daemon's
# error (its stderr) and return the status.
dk() {
    local limit=$1 rc=0
    shift
    timeout "$limit" docker "$@" 2>"$RUN/dk.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '    docker %s: exit %d: %s\n' "$1" "$rc" "$(tr '\n' ' ' <"$RUN/dk.err" | cut -c1-300)" >&2
    fi
    return "$rc"
}

# ---------------------------------------------------------------- images
# The init `docker run --init` uses: the daemon's docker-init (tini).
init_info() {
    local bin ver
    bin=$(docker info -f '{{.InitBinary}}' 2>/dev/null || true)
    ver=$(docker version -f '{{range .Server.Components}}{{if eq .Name "docker-init"}}{{.Version}}{{end}}{{end}}' 2>/dev/null || true)
    [[ -n $ver ]] || die "docker run --init needs the daemon's init binary (${bin:-docker-init}), which it cannot find: apt-get install tini (it provides /usr/bin/docker-init -> tini-static on Debian) or set \"init-path\" in /etc/docker/daemon.json"
    TINI="${bin:-docker-init}: tini $ver"
}

# The base image: the cached rootfs, imported. Cached while the rootfs
# marker, the host's CA bundle and this recipe stay the same.
base_image() {
    local rootfs key have stage=$RUN/base
    rootfs=$("$HERE/rootfs.sh" 2>"$RUN/rootfs.log") \
        || { tail -n 8 "$RUN/rootfs.log"; die "docker/e2e/rootfs.sh failed"; }
    key=$( { echo "recipe 1"; cat "$rootfs/../complete"; cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null; } | sha256sum | cut -c1-16)
    have=$(docker image inspect -f '{{index .Config.Labels "pyinit.base.key"}}' "$BASE" 2>/dev/null || true)
    if [[ $have == "$key" && ${E2E_REBUILD_BASE:-0} != 1 ]]; then
        log "$BASE: cached (key $key)"
        return
    fi
    # The rootfs without run.sh's mount points, as one layer.
    # shellcheck disable=SC2016 # the $PATH is docker's
    step "import-base" 300 bash -c 'tar -C "$1" --exclude=./pyinit --exclude=./app --exclude=./out -c . \
        | docker import --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            --change "ENV LANG=C.UTF-8" --change "CMD [\"python3\"]" - "$2-raw"' _ "$rootfs" "$BASE"
    # This machine reaches PyPI through a proxy that re-signs TLS: pip in the
    # image must trust what the host trusts (Debian's bundle plus the proxy's
    # CA). On a machine without one the host's bundle is Debian's anyway.
    mkdir -p "$stage"
    cp /etc/ssl/certs/ca-certificates.crt "$stage/" 2>/dev/null || cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$stage/"
    printf 'FROM %s-raw\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nLABEL pyinit.base.key=%s\n' \
        "$BASE" "$key" >"$stage/Dockerfile"
    step "build-base" 120 docker build -t "$BASE" "$stage"
    timeout 30 docker rmi "$BASE-raw" >/dev/null 2>&1 || true
}

build_images() {
    base_image
    step "build-static" 900 "$REPO/scripts/build-static.sh"
    step "image-pyinit" 120 docker build -f "$REPO/docker/Dockerfile" -t pyinit "$REPO"
    local ex
    for ex in gunicorn uvicorn; do
        step "image-$ex" 600 docker build --build-arg "BASE_IMAGE=$BASE" -t "pyinit-$ex" "$REPO/docker/examples/$ex"
    done
    step "image-procfile" 600 docker build --build-arg "BASE_IMAGE=$BASE" -t pyinit-procfile \
        -f "$REPO/docker/examples/procfile/Dockerfile" "$REPO"
    step "build-wheel" 900 "$REPO/scripts/build-wheel.sh"
    step "image-pip" 300 docker build --build-arg "BASE_IMAGE=$BASE" -t pyinit-pip \
        -f "$REPO/docker/examples/pip/Dockerfile" "$REPO/target/wheels"
    step "image-e2e" 300 docker build --build-arg "BASE_IMAGE=$BASE" -t "$E2E" "$HERE"
    IMAGE_SIZE=$(docker image inspect -f '{{.Size}}' pyinit)
    log "image sizes: pyinit $IMAGE_SIZE bytes; $BASE $(docker image inspect -f '{{.Size}}' "$BASE") bytes"
}

# ---------------------------------------------------------------- helpers
WHY=()
check() { local what=$1; shift; "$@" || WHY+=("$what"); }
eq() { [[ $1 == "$2" ]]; }
lt_s() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
ge_s() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
has() { grep -qE -- "$2" "$1"; }
hasnt() { ! grep -qE -- "$2" "$1"; }

# start CASE INIT IMAGE [docker run options] -- [args]: sets NAME.
# INIT tini adds --init (the options then also name --entrypoint).
start() {
    NAME=pyinit-e2e-$$-$1-$2
    local init=$2 image=$3 opts=()
    shift 3
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    [[ $init == tini ]] && opts+=(--init)
    NAMES+=("$NAME")
    T_RUN=$EPOCHREALTIME
    dk 60 run -d --name "$NAME" --network none --log-driver json-file --log-opt max-size=100m \
        "${opts[@]}" "$image" "$@" >/dev/null
}
logs() { timeout 30 docker logs "$NAME" >"$RUN/$NAME.out" 2>"$RUN/$NAME.err" || true; }
running() { [[ $(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null) == true ]]; }
# wait_log STREAM ERE COUNT SECONDS
wait_log() {
    local deadline=$((SECONDS + $4))
    while ((SECONDS < deadline)); do
        logs
        (($(grep -cE -- "$2" "$RUN/$NAME.$1" || true) >= $3)) && return 0
        running || return 1
        sleep 0.1
    done
    return 1
}
pid1() { timeout 10 docker exec "$NAME" cat /proc/1/cmdline 2>/dev/null | tr '\0' ' ' | sed 's/ $//'; }
# The init the case must have as PID 1.
want_pid1() { if [[ $1 == tini ]]; then echo '^/sbin/docker-init --'; else echo 'pyinit'; fi; }
# http PORT: GET / from inside the container (its loopback).
http() {
    timeout 10 docker exec "$NAME" python3 -c \
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1/', timeout=5).read().decode().strip())" \
        2>/dev/null || true
}
# docker_stop TIMEOUT: sets STATUS, STOP_S (from `docker stop` to the
# container's State.FinishedAt, the CLI's own overhead left out), CLI_S and
# RUNTIME_KILL (Docker had to SIGKILL: exit 137 at or after the timeout).
docker_stop() {
    local t0=$EPOCHREALTIME fin
    dk $(($1 + 30)) stop -t "$1" "$NAME" >/dev/null || true
    CLI_S=$(secs "$t0" "$EPOCHREALTIME")
    STATUS=$(docker inspect -f '{{.State.ExitCode}}' "$NAME" 2>/dev/null || echo none)
    fin=$(docker inspect -f '{{.State.FinishedAt}}' "$NAME" 2>/dev/null || true)
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
# report CASE INIT CELL DETAIL: record PASS/FAIL for one cell of the table.
report() {
    local case=$1 init=$2 cell=$3 detail=$4
    if ((${#WHY[@]})); then
        CELL[$case,$init]="**FAIL**: $(IFS=';'; echo "${WHY[*]}")"
        FAILED+=("$case/$init")
        log "FAIL $case under $init: $detail -- failed: $(IFS=';'; echo "${WHY[*]}")"
        [[ -f $RUN/$NAME.err ]] && tail -n 10 "$RUN/$NAME.err" | cut -c1-200 | sed 's/^/    err| /'
        [[ -f $RUN/$NAME.out ]] && tail -n 4 "$RUN/$NAME.out" | cut -c1-200 | sed 's/^/    out| /'
    else
        CELL[$case,$init]="PASS: $cell"
        log "PASS $case under $init: $detail"
    fi
    DETAILS+=("$case / $init: $detail")
    WHY=()
    timeout 30 docker rm -f "$NAME" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- cases
case_gunicorn() {
    local init=$1 opts=() args=() body p1 ready_s
    [[ $init == tini ]] && { opts=(--entrypoint gunicorn); args=(-w 2 -b 0.0.0.0:8000 app:app); }
    start gunicorn "$init" pyinit-gunicorn "${opts[@]}" -- "${args[@]}" || WHY+=("docker run failed")
    check "2 'Booting worker' lines" wait_log err 'Booting worker with pid' 2 30
    ready_s=$(secs "$T_RUN" "$EPOCHREALTIME")
    p1=$(pid1)
    check "PID 1 is $init ($p1)" has <(echo "$p1") "$(want_pid1 "$init")"
    body=$(http 8000)
    check "HTTP GET answered ($body)" has <(echo "$body") '^hello from worker'
    docker_stop "$STOP_TIMEOUT"
    check "exit 0 (got $STATUS)" eq "$STATUS" 0
    check "no SIGKILL from Docker" eq "$RUNTIME_KILL" no
    check "stopped in < 2 s (took $STOP_S s)" lt_s "$STOP_S" 2
    check "gunicorn shut down gracefully" has "$RUN/$NAME.err" 'Shutting down: Master'
    check "no pyinit SIGKILL" hasnt "$RUN/$NAME.err" 'sent SIGKILL'
    report gunicorn "$init" "exit $STATUS, $STOP_S s after docker stop" \
        "PID 1 '$p1'; ready in $ready_s s; HTTP '$body'; exit $STATUS $STOP_S s after docker stop (CLI $CLI_S s); Docker SIGKILL: $RUNTIME_KILL"
}

case_uvicorn() {
    local init=$1 opts=() args=() body p1
    [[ $init == tini ]] && { opts=(--entrypoint uvicorn); args=(--workers 2 --host 0.0.0.0 --port 8000 app:app); }
    start uvicorn "$init" pyinit-uvicorn "${opts[@]}" -- "${args[@]}" || WHY+=("docker run failed")
    check "2 workers started" wait_log err 'Application startup complete' 2 30
    p1=$(pid1)
    check "PID 1 is $init ($p1)" has <(echo "$p1") "$(want_pid1 "$init")"
    body=$(http 8000)
    check "HTTP GET answered ($body)" has <(echo "$body") '^hello from worker'
    docker_stop "$STOP_TIMEOUT"
    check "exit 0 (got $STATUS)" eq "$STATUS" 0
    check "no SIGKILL from Docker" eq "$RUNTIME_KILL" no
    check "stopped in < 2 s (took $STOP_S s)" lt_s "$STOP_S" 2
    check "lifespan shutdown ran in both workers" wait_log err 'shutting down cleanly' 2 1
    report uvicorn "$init" "exit $STATUS, $STOP_S s after docker stop" \
        "PID 1 '$p1'; HTTP '$body'; exit $STATUS $STOP_S s after docker stop (CLI $CLI_S s); Docker SIGKILL: $RUNTIME_KILL"
}

case_ignore() {
    local init=$1 opts=(-e PYTHONUNBUFFERED=1) args=(python3 /app/ignore_term.py) line
    if [[ $init == tini ]]; then
        opts+=(--entrypoint python3); args=(/app/ignore_term.py)
    else
        opts+=(-e PYINIT_GRACE=2s)
    fi
    start ignore "$init" "$E2E" "${opts[@]}" -- "${args[@]}" || WHY+=("docker run failed")
    check "READY" wait_log out '^READY$' 1 30
    docker_stop "$STOP_TIMEOUT"
    check "the app saw the TERM" has "$RUN/$NAME.out" '^ignoring signal 15$'
    check "exit 137 (got $STATUS)" eq "$STATUS" 137
    if [[ $init == pyinit ]]; then
        check "pyinit's report on stderr" has "$RUN/$NAME.err" 'grace period of 2s ran out; sent SIGKILL to 1 process'
        check "no SIGKILL from Docker" eq "$RUNTIME_KILL" no
        check "killed at pyinit's 2 s grace (took $STOP_S s)" ge_s "$STOP_S" 1.9
        check "well before Docker's $STOP_TIMEOUT s (took $STOP_S s)" lt_s "$STOP_S" 4
        line=$(grep -m1 'grace period' "$RUN/$NAME.err" | cut -c1-120 || true)
        report ignore "$init" "killed by pyinit at its 2 s grace: exit 137 after $STOP_S s, with a report" \
            "exit $STATUS $STOP_S s after docker stop; Docker SIGKILL: $RUNTIME_KILL; stderr: $line"
    else
        # tini forwards the TERM, the app ignores it, and tini has no
        # deadline: Docker's SIGKILL at its timeout ends it, silently.
        check "Docker had to SIGKILL at its $STOP_TIMEOUT s" eq "$RUNTIME_KILL" yes
        check "no report from the init" hasnt "$RUN/$NAME.err" 'SIGKILL'
        report ignore "$init" "killed by Docker at $STOP_TIMEOUT s: exit 137 after $STOP_S s, no report" \
            "exit $STATUS $STOP_S s after docker stop; Docker SIGKILL: $RUNTIME_KILL"
    fi
}

# case_logs INIT [raw|json]
case_logs() {
    local init=$1 mode=${2:-raw} opts=() args=(python3 /app/workers.py "$WORKERS" "$PER_WORKER") key=logs verdict logpath rc
    [[ $init == tini ]] && { opts=(--entrypoint python3); args=("${args[@]:1}"); }
    if [[ $mode == json ]]; then opts+=(-e PYINIT_LOG_FORMAT=json); key=logs-json; fi
    start "$key" "$init" "$E2E" "${opts[@]}" -- "${args[@]}" || WHY+=("docker run failed")
    STATUS=$(dk 120 wait "$NAME" || echo none)
    check "exit 0 (got $STATUS)" eq "$STATUS" 0
    logs
    logpath=$(docker inspect -f '{{.LogPath}}' "$NAME" 2>/dev/null || true)
    rc=0
    verdict=$(timeout 60 python3 "$HERE/check_docker_logs.py" "$mode" "$WORKERS" "$PER_WORKER" \
        "$RUN/$NAME.out" "$logpath" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || WHY+=("$verdict")
    local split=${verdict##*split by Docker }
    report "$key" "$init" "all lines whole; Docker split ${split:-?} entries" \
        "$(secs "$T_RUN" "$EPOCHREALTIME") s; exit $STATUS; $verdict"
}

case_repl() {
    local init=$1 opts=() args=(python3 -i -q) verdict rc=0
    NAME=pyinit-e2e-$$-repl-$init
    NAMES+=("$NAME")
    [[ $init == tini ]] && { opts=(--init --entrypoint python3); args=(-i -q); }
    verdict=$(timeout 90 python3 "$HERE/docker_tty.py" docker run -it --rm --name "$NAME" \
        --network none "${opts[@]}" "$E2E" "${args[@]}" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || WHY+=("$(head -n1 <<<"$verdict")")
    ((rc == 0)) || sed -n '2,$p' <<<"$verdict"
    local t=${verdict#*new prompt in }
    report repl "$init" "Ctrl-C -> KeyboardInterrupt, prompt back in ${t%% s*} s; exit 0" "$(head -n1 <<<"$verdict")"
}

case_procfile() {
    local init=$1
    if [[ $init == tini ]]; then CELL[procfile,tini]="n/a: tini runs one command"; return; fi
    start procfile "$init" pyinit-procfile -- || WHY+=("docker run failed")
    # The worker starts once web accepts on :8000 (depends_on + ready).
    check "web, worker and beat running" wait_log out '^(beat|worker) +\|' 2 30
    docker_stop 30
    check "exit 0 (got $STATUS)" eq "$STATUS" 0
    check "no SIGKILL from Docker" eq "$RUNTIME_KILL" no
    check "no pyinit SIGKILL" hasnt "$RUN/$NAME.err" 'sent SIGKILL'
    report procfile "$init" "exit $STATUS, $STOP_S s after docker stop -t 30" \
        "TOML config: web, worker, beat; exit $STATUS $STOP_S s after docker stop -t 30; Docker SIGKILL: $RUNTIME_KILL"
}

case_pip() {
    local init=$1 version out1 out2 out3
    if [[ $init == tini ]]; then CELL[pip,tini]="n/a"; return; fi
    NAME=pyinit-e2e-$$-pip
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n1)
    out1=$(dk 60 run --rm --network none --entrypoint pyinit pyinit-pip --version || true)
    check "pyinit --version ($out1)" eq "$out1" "pyinit $version"
    out2=$(dk 60 run --rm --network none --entrypoint python pyinit-pip -m pyinit --version || true)
    check "python -m pyinit --version ($out2)" eq "$out2" "pyinit $version"
    # The image's own ENTRYPOINT (the venv's pyinit), and python -m pyinit as
    # PID 1: exec, so pyinit itself is PID 1.
    out3=$(dk 60 run --rm --network none --entrypoint python pyinit-pip -m pyinit -- \
        python3 -c 'print(1, open("/proc/1/cmdline").read().split(chr(0))[0])' || true)
    check "python -m pyinit -- python3 -c ... ($out3)" eq "$out3" "1 /opt/venv/bin/pyinit"
    check "the image's ENTRYPOINT runs" eq "$(dk 60 run --rm --network none pyinit-pip || true)" "hello from python under pyinit"
    report pip "$init" "pyinit --version, python -m pyinit --version and as PID 1 in the image" \
        "'$out1' / '$out2' / '$out3'"
}

# ---------------------------------------------------------------- main
main() {
    init_info
    log "docker: client $(docker version -f '{{.Client.Version}}' 2>/dev/null), server $(docker version -f '{{.Server.Version}}' 2>/dev/null); docker run --init: $TINI; logs in ${RUN#"$REPO"/}"
    local t0=$EPOCHREALTIME
    build_images
    local t_build
    t_build=$(secs "$t0" "$EPOCHREALTIME")
    local c init t_c
    CASES=(${E2E_ONLY:-gunicorn uvicorn ignore logs logs-json repl procfile pip})
    for c in "${CASES[@]}"; do
        for init in pyinit tini; do
            t_c=$EPOCHREALTIME
            case $c in
                logs-json)
                    if [[ $init == tini ]]; then CELL[logs-json,tini]="n/a: tini has no log format"; continue; fi
                    case_logs "$init" json ;;
                *) "case_$c" "$init" ;;
            esac
            log "$c under $init: $(secs "$t_c" "$EPOCHREALTIME") s"
        done
    done
    write_results "$t_build"
    if ((${#FAILED[@]})); then
        echo "FAILED: ${FAILED[*]}"
        return 1
    fi
    echo "ALL PASSED"
}

declare -A TITLE=(
    [gunicorn]="gunicorn -w 2 (docker/examples/gunicorn): \`docker stop -t 10\`"
    [uvicorn]="uvicorn --workers 2 (docker/examples/uvicorn): \`docker stop -t 10\`"
    [ignore]="app that ignores SIGTERM: \`docker stop -t 10\` (pyinit: \`PYINIT_GRACE=2s\`)"
    [logs]="\`docker logs\`: 5,000 lines from 4 workers + 12 lines of 16,385-100,000 bytes (json-file)"
    [logs-json]="the same with \`PYINIT_LOG_FORMAT=json\`: no record split by Docker"
    [repl]="\`docker run -it\` python3 REPL: Ctrl-C during \`time.sleep(60)\`, then Ctrl-D"
    [procfile]="Procfile/TOML example (docker/examples/procfile): \`docker stop -t 30\`"
    [pip]="the wheel pip-installed in a venv (docker/examples/pip)"
)

write_results() {
    local md=$WORK/RESULTS.md c
    {
        echo "| case | pyinit | \`docker run --init\` ($TINI) |"
        echo "| --- | --- | --- |"
        for c in "${CASES[@]}"; do
            echo "| ${TITLE[$c]:-$c} | ${CELL[$c,pyinit]:-not run} | ${CELL[$c,tini]:-not run} |"
        done
        echo
        echo "Images built and cases run in $(secs "$T_START" "$EPOCHREALTIME") s (images: $1 s); the \`pyinit\` image is $IMAGE_SIZE bytes."
        echo
        echo '```'
        printf '%s\n' "${DETAILS[@]}"
        echo '```'
    } >"$md"
    echo
    echo "==== pyinit in Docker, next to docker run --init ===="
    cat "$md"
    echo "(also in ${md#"$REPO"/})"
}

main "$@"
