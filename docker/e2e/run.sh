#!/usr/bin/env bash
# docker/e2e/run.sh -- pyinit as the ENTRYPOINT of a real OCI container.
#
# No Docker daemon needed: Debian's runc (the runtime Docker drives) runs a
# Debian bookworm rootfs (python3 + gunicorn, built once with mmdebstrap and
# cached in target/e2e-rootfs/) with pyinit bind-mounted as /pyinit, and every
# container is stopped the way `docker stop` does it: `runc kill ID TERM`, wait
# up to the stop timeout, `runc kill ID KILL`, collect the exit status.
# See docker/e2e/README.md. Needs root. Exit 0 when every scenario passes.
#
# Environment: E2E_MIRROR (Debian mirror URL; default: the host's apt sources),
# E2E_STOP_TIMEOUT (10), E2E_CONTRAST_TIMEOUT (3), E2E_LINES (5000),
# E2E_KEEP=1 (keep target/e2e-run/run-PID/ even on success),
# E2E_PYINIT=/path/to/static/pyinit (test this binary; no cargo build),
# E2E_REBUILD_ROOTFS=1, E2E_REQUIRE=1 (a missing prerequisite fails instead of skipping),
# E2E_ONLY="a c" (run only these scenarios; f is `pyinit health` by `runc exec`).
set -euo pipefail
export LC_ALL=C   # EPOCHREALTIME and awk with a "." decimal point

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
TRIPLE=x86_64-unknown-linux-gnu
CACHE=$REPO/target/e2e-rootfs
ROOTFS=$CACHE/rootfs
RUNS=$REPO/target/e2e-run
RUN=$RUNS/run-$$
STATE=$RUN/runc-state
STOP_TIMEOUT=${E2E_STOP_TIMEOUT:-10}
CONTRAST_TIMEOUT=${E2E_CONTRAST_TIMEOUT:-3}
N_LINES=${E2E_LINES:-5000}
WORKERS=3
PROMPT_MAX_S=1          # "stops in well under a second": the bar is 1 s
CONTAINER_LIMIT=120     # no container lives longer than this, whatever happens

T_START=$EPOCHREALTIME
CIDS=()
BGPIDS=()
FAILED=()
RESULTS=()

# ---------------------------------------------------------------- helpers
us() { local t=${1:-$EPOCHREALTIME}; echo $(( 10#${t/./} )); }  # EPOCHREALTIME -> microseconds
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }  # two EPOCHREALTIMEs -> "1.234"
log() { printf '[e2e %7s s] %s\n' "$(secs "$T_START" "$EPOCHREALTIME")" "$*"; }
die() { log "ERROR: $*"; exit 1; }
skip() {
    if [[ ${E2E_REQUIRE:-0} == 1 ]]; then die "$* (E2E_REQUIRE=1)"; fi
    echo "SKIP: $*"
    exit 0
}

cleanup() {
    local rc=$? cid pid
    for cid in "${CIDS[@]}"; do
        timeout 5 runc --root "$STATE" kill "$cid" KILL >/dev/null 2>&1 || true
        timeout 10 runc --root "$STATE" delete -f "$cid" >/dev/null 2>&1 || true
    done
    for pid in "${BGPIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -d $RUN ]]; then
        if [[ $rc -eq 0 && ${E2E_KEEP:-0} != 1 ]]; then
            rm -rf "$RUN"
        else
            echo "logs kept in $RUN"
        fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- 0. preconditions
[[ $(uname -m) == x86_64 ]] || skip "x86_64 only (pyinit is built for $TRIPLE)"
[[ $(id -u) -eq 0 ]] || skip "needs root (runc and mmdebstrap run as root here)"

# ---------------------------------------------------------------- 1. tools
ensure_tools() {
    local -A pkg_of=([runc]=runc [nsenter]=util-linux
        [python3]=python3 [curl]=curl [timeout]=coreutils [flock]=util-linux)
    local cmd missing=()
    for cmd in "${!pkg_of[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_of[$cmd]}")
    done
    if ((${#missing[@]})); then
        command -v apt-get >/dev/null || skip "missing ${missing[*]} and no apt-get"
        log "installing ${missing[*]}"
        timeout 300 apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive timeout 600 \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
    [[ -n ${E2E_PYINIT:-} ]] || command -v cargo >/dev/null \
        || skip "cargo not found (needed to build pyinit; or set E2E_PYINIT)"
}

# ---------------------------------------------------------------- 2. rootfs (cached)
# Built once by rootfs.sh (shared with docker.sh, which imports it as its
# base image) and reused.
build_rootfs() {
    local out
    out=$("$HERE/rootfs.sh") || die "docker/e2e/rootfs.sh failed"
    [[ $out == "$ROOTFS" ]] || die "rootfs.sh built $out, expected $ROOTFS"
}

# ---------------------------------------------------------------- 3. static pyinit
build_pyinit() {
    local t0=$EPOCHREALTIME bin=${E2E_PYINIT:-$REPO/target/$TRIPLE/release/pyinit}
    if [[ -n ${E2E_PYINIT:-} ]]; then
        log "pyinit: using E2E_PYINIT=$E2E_PYINIT (no build)"
        [[ -x $bin ]] || die "E2E_PYINIT=$bin is not an executable file"
    else
        log "pyinit: cargo build --release --target $TRIPLE (+crt-static)"
        (cd "$REPO" && timeout 900 ./scripts/build-static.sh >/dev/null) \
            || die "scripts/build-static.sh failed"
    fi
    # A private copy: a concurrent rebuild must not swap the binary mid-run.
    cp "$bin" "$RUN/pyinit"
    local l
    l=$(ldd "$RUN/pyinit" 2>&1 || true)
    [[ $l == *"statically linked"* || $l == *"not a dynamic executable"* ]] \
        || die "pyinit is not statically linked: $l"
    log "pyinit: $("$RUN/pyinit" --version) static, $(stat -c %s "$RUN/pyinit") bytes ($(secs "$t0" "$EPOCHREALTIME") s)"
}

# ---------------------------------------------------------------- 4. containers
NOFILE=$(ulimit -Hn)
[[ $NOFILE == unlimited || $NOFILE -gt 20000 ]] && NOFILE=20000

# start NAME [--env K=V]... -- ARGS...: sets B (bundle dir), CID, BGPID.
start() {
    local name=$1
    shift
    local envs=()
    while [[ $1 != -- ]]; do envs+=("$1" "$2"); shift 2; done
    shift
    B=$RUN/$name
    CID=pyinit-e2e-$$-$name
    mkdir -p "$B/out"
    timeout 10 runc spec --bundle "$B" || die "runc spec failed"
    timeout 10 python3 "$HERE/mkconfig.py" "$B/config.json" --rootfs "$ROOTFS" \
        --pyinit "$RUN/pyinit" --app "$HERE/app" --out "$B/out" --nofile "$NOFILE" \
        "${envs[@]}" -- "$@" || die "mkconfig.py failed"
    CIDS+=("$CID")
    # Foreground `runc run` in the background: it returns the container's exit
    # status (128+N when killed by signal N), which the subshell records with
    # the time it saw it. env --default-signal undoes bash's SIG_IGN of
    # INT/QUIT for background jobs (foreground runc happens to undo it too, as
    # it catches every signal to proxy it; this does not rely on that).
    (
        rc=0
        timeout -k 5 "$CONTAINER_LIMIT" env --default-signal \
            runc --root "$STATE" run --bundle "$B" "$CID" \
            </dev/null >"$B/stdout" 2>"$B/stderr" || rc=$?
        echo "$rc $EPOCHREALTIME" >"$B/rc.tmp"
        mv "$B/rc.tmp" "$B/rc"
    ) &
    BGPID=$!
    BGPIDS+=("$BGPID")
    T_RUN=$EPOCHREALTIME
}

# wait_running: sets PID (the container's PID 1, as seen from the host).
wait_running() {
    local deadline=$(( $(us) + 20000000 )) st
    PID=
    while (( $(us) < deadline )); do
        [[ -e $B/rc ]] && return 1
        st=$(timeout 5 runc --root "$STATE" state "$CID" 2>/dev/null || true)
        if [[ $st == *'"status": "running"'* ]]; then
            PID=$(sed -n 's/^ *"pid": \([0-9]*\),$/\1/p' <<<"$st")
            [[ -n $PID ]] && return 0
        fi
        sleep 0.02
    done
    return 1
}

# wait_for FILE ERE COUNT SECONDS: until FILE has COUNT lines matching ERE.
wait_for() {
    local deadline=$(( $(us) + $4 * 1000000 )) n
    while (( $(us) < deadline )); do
        n=$(grep -cE -- "$2" "$1" 2>/dev/null || true)
        (( ${n:-0} >= $3 )) && return 0
        [[ -e $B/rc ]] && return 1
        sleep 0.02
    done
    return 1
}

# docker_stop TIMEOUT: what `docker stop -t TIMEOUT` does. Sets STATUS,
# STOP_S (TERM sent -> runc saw the container exit), RUNTIME_KILL (yes/no).
docker_stop() {
    local timeout_s=$1 t_term deadline st
    RUNTIME_KILL=no
    t_term=$EPOCHREALTIME
    timeout 5 runc --root "$STATE" kill "$CID" TERM || log "runc kill TERM failed"
    deadline=$(( $(us "$t_term") + timeout_s * 1000000 ))
    while [[ ! -e $B/rc ]] && (( $(us) < deadline )); do sleep 0.01; done
    if [[ ! -e $B/rc ]]; then
        RUNTIME_KILL=yes
        timeout 5 runc --root "$STATE" kill "$CID" KILL || log "runc kill KILL failed"
    fi
    deadline=$(( $(us) + 15000000 ))
    while [[ ! -e $B/rc ]] && (( $(us) < deadline )); do sleep 0.01; done
    wait "$BGPID" 2>/dev/null || true
    if [[ -e $B/rc ]]; then
        read -r STATUS st <"$B/rc"
        STOP_S=$(secs "$t_term" "$st")
    else
        STATUS=none
        STOP_S=timeout
    fi
    timeout 10 runc --root "$STATE" delete -f "$CID" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- 5. scenarios
WHY=()
check() {  # check DESCRIPTION CONDITION...: record a failed expectation
    local what=$1
    shift
    "$@" || WHY+=("$what")
}
lt_s() { [[ $1 != timeout ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }   # lt_s 0.123 1
ge_s() { [[ $1 != timeout ]] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
has() { grep -qE -- "$2" "$1"; }
hasnt() { ! grep -qE -- "$2" "$1"; }
eq() { [[ $1 == "$2" ]]; }

report() {  # report LETTER TITLE DETAILS
    if ((${#WHY[@]})); then
        RESULTS+=("FAIL  $1  $2: $3 -- failed: $(IFS=';'; echo "${WHY[*]}")")
        FAILED+=("$1")
        log "FAIL $1; last lines of $B/stdout and $B/stderr:"
        tail -c 1500 "$B/stdout" | tail -n 8 | cut -c1-200 | sed 's/^/    out| /'
        tail -n 12 "$B/stderr" | cut -c1-200 | sed 's/^/    err| /'
    else
        RESULTS+=("PASS  $1  $2: $3")
    fi
    echo "${RESULTS[-1]}"
    WHY=()
}

init_cmd() { tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null | cut -c1-80; }

scenario_a() {
    local title="gunicorn -w $WORKERS under pyinit (docker stop -t $STOP_TIMEOUT)" ready_s body="" warn
    start a-gunicorn -- /pyinit -- gunicorn -w "$WORKERS" -b 127.0.0.1:8000 app:app
    check "container started" wait_running
    if [[ -n $PID ]]; then
        check "PID 1 is pyinit" eq "$(init_cmd)" "/pyinit -- gunicorn -w $WORKERS -b 127.0.0.1:8000 app:app "
        check "$WORKERS 'Booting worker' lines" wait_for "$B/stderr" 'Booting worker with pid' "$WORKERS" 20
        for _ in $(seq 50); do  # HTTP from inside the container's loopback-only netns
            body=$(timeout 5 nsenter --net="/proc/$PID/ns/net" \
                curl -sf --max-time 2 http://127.0.0.1:8000/ 2>/dev/null || true)
            [[ $body == pid=* ]] && break
            sleep 0.1
        done
        check "HTTP GET 127.0.0.1:8000 via the container's lo" eq "${body%%=*}" pid
    fi
    ready_s=$(secs "$T_RUN" "$EPOCHREALTIME")
    docker_stop "$STOP_TIMEOUT"
    check "exit status 0 (got $STATUS)" eq "$STATUS" 0
    check "no runtime KILL" eq "$RUNTIME_KILL" no
    check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" "$PROMPT_MAX_S"
    check "gunicorn shut down gracefully" has "$B/stderr" 'Shutting down: Master'
    check "no pyinit SIGKILL" hasnt "$B/stderr" 'sent SIGKILL'
    # Not a failure: with the stop TERM sent to the whole group (pyinit's
    # default), each worker gets TERM from pyinit and again from the master,
    # and gunicorn 20.1 logs "Worker with pid N was terminated due to signal
    # 15" when the second one lands while the worker is already exiting.
    # `pyinit -c` sends TERM to the master only and avoids it.
    warn=$(grep -c 'terminated due to signal' "$B/stderr" || true)
    report a "$title" "ready in $ready_s s ($WORKERS workers booted, HTTP ${body:-none}); TERM -> exit $STATUS in $STOP_S s; runtime KILL: $RUNTIME_KILL; gunicorn 'terminated due to signal' warnings: ${warn:-0}"
}

scenario_b() {
    local title="plain script under pyinit -r TERM:INT"
    start b-plain -- /pyinit -r TERM:INT -- python3 /app/plain.py
    check "container started" wait_running
    check "READY" wait_for "$B/stdout" '^READY$' 1 15
    docker_stop "$STOP_TIMEOUT"
    check "finally: ran (cleanup done on stdout)" has "$B/stdout" '^cleanup done$'
    check "KeyboardInterrupt on stderr" has "$B/stderr" '^KeyboardInterrupt'
    check "exit status 130 = 128+SIGINT (got $STATUS)" eq "$STATUS" 130
    check "no runtime KILL" eq "$RUNTIME_KILL" no
    check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" "$PROMPT_MAX_S"
    report b "$title" "'cleanup done' printed; TERM -> exit $STATUS in $STOP_S s; runtime KILL: $RUNTIME_KILL"
}

scenario_c() {
    local title="TERM-ignoring app under pyinit -t 2s (docker stop -t $STOP_TIMEOUT)" line
    start c-ignore -- /pyinit -t 2s -- python3 /app/ignore_term.py
    check "container started" wait_running
    check "READY" wait_for "$B/stdout" '^READY$' 1 15
    docker_stop "$STOP_TIMEOUT"
    check "app saw the TERM" has "$B/stdout" '^ignoring signal 15$'
    check "pyinit's grace report on stderr" has "$B/stderr" '^pyinit: .*grace period .*ran out; sent SIGKILL to'
    check "exit status 137 = 128+SIGKILL (got $STATUS)" eq "$STATUS" 137
    check "no runtime KILL" eq "$RUNTIME_KILL" no
    check "killed at pyinit's 2 s grace (took $STOP_S s)" ge_s "$STOP_S" 1.9
    check "well before the runtime's ${STOP_TIMEOUT} s (took $STOP_S s)" lt_s "$STOP_S" 4
    line=$(grep -m1 -E 'grace period .*ran out' "$B/stderr" | cut -c1-110 || true)
    report c "$title" "TERM -> SIGKILL after $STOP_S s, exit $STATUS; runtime KILL: $RUNTIME_KILL; stderr: \"${line:-no report}\""
}

scenario_d() {
    local title="$N_LINES log lines through pyinit, then stop" verdict
    start d-lines -- /pyinit -- python3 /app/lines.py "$N_LINES"
    check "container started" wait_running
    # /out/written appears once every write() has returned; stop at once, while
    # the tail may still be in the pipes to pyinit and from pyinit to runc.
    for _ in $(seq 1500); do [[ -e $B/out/written || -e $B/rc ]] && break; sleep 0.01; done
    check "app wrote all lines" test -e "$B/out/written"
    docker_stop "$STOP_TIMEOUT"
    verdict=$(timeout 30 python3 "$HERE/check_lines.py" "$N_LINES" "$B/stdout" "$B/stderr") \
        || WHY+=("lines: $verdict")
    check "exit status 143 = 128+SIGTERM (got $STATUS)" eq "$STATUS" 143
    check "no runtime KILL" eq "$RUNTIME_KILL" no
    check "stopped in < 1 s (took $STOP_S s)" lt_s "$STOP_S" "$PROMPT_MAX_S"
    report d "$title" "$verdict; TERM -> exit $STATUS in $STOP_S s; runtime KILL: $RUNTIME_KILL"
}

scenario_e() {
    local title="contrast: same script as PID 1 WITHOUT pyinit (docker stop -t $CONTRAST_TIMEOUT, shortened from 10 to keep CI fast)"
    start e-nopyinit --env PYTHONUNBUFFERED=1 -- python3 /app/plain.py
    check "container started" wait_running
    if [[ -n $PID ]]; then check "PID 1 is python3" eq "$(init_cmd)" "python3 /app/plain.py "; fi
    check "READY" wait_for "$B/stdout" '^READY$' 1 15
    docker_stop "$CONTRAST_TIMEOUT"
    check "TERM ignored: runtime KILL needed" eq "$RUNTIME_KILL" yes
    check "exit status 137 (got $STATUS)" eq "$STATUS" 137
    check "waited the full ${CONTRAST_TIMEOUT} s (took $STOP_S s)" ge_s "$STOP_S" "$CONTRAST_TIMEOUT"
    check "finally: did NOT run" hasnt "$B/stdout" '^cleanup done$'
    report e "$title" "TERM ignored by PID 1; runtime KILL: $RUNTIME_KILL after $STOP_S s, exit $STATUS, no cleanup"
}

# ---- scenario f (issue 12): `pyinit health` by `runc exec`, as a HEALTHCHECK or
# an exec probe runs it. The root is read-only, so the socket goes to /tmp.
health_probe() {  # sets HEALTH_RC and HEALTH_OUT
    HEALTH_RC=0
    HEALTH_OUT=$(timeout 10 runc --root "$STATE" exec --env PYINIT_SOCKET=/tmp/pyinit/control.sock \
        "$CID" /pyinit health 2>&1) || HEALTH_RC=$?
}

scenario_f() {
    local title="pyinit health by runc exec: 1 until ready, then 0, 1 while stopping" first first_out ready_rc=none stop_rc stop_out
    start f-health --env PYINIT_SOCKET=/tmp/pyinit/control.sock -- \
        /pyinit --stop-delay 3s --config /app/health.toml
    check "container started" wait_running
    health_probe
    first=$HEALTH_RC first_out=$HEALTH_OUT
    check "health 1 before gunicorn is ready (got $first: $first_out)" eq "$first" 1
    check "it names web (got: $first_out)" eq "${first_out%%:*}" web
    for _ in $(seq 100); do
        health_probe
        [[ $HEALTH_RC == 0 ]] && { ready_rc=0; break; }
        sleep 0.2
    done
    check "health 0 once ready (last: $HEALTH_RC $HEALTH_OUT)" eq "$ready_rc" 0
    timeout 5 runc --root "$STATE" kill "$CID" TERM || log "runc kill TERM failed"
    health_probe
    stop_rc=$HEALTH_RC stop_out=$HEALTH_OUT
    check "health 1 during --stop-delay (got $stop_rc)" eq "$stop_rc" 1
    check "it says stopping (got: $stop_out)" eq "$stop_out" stopping
    docker_stop "$STOP_TIMEOUT"
    check "no runtime KILL" eq "$RUNTIME_KILL" no
    report f "$title" "before ready: $first ($first_out); ready: $ready_rc; during the stop delay: $stop_rc ($stop_out); exit $STATUS"
}
# ---- end scenario f

# ---------------------------------------------------------------- main
main() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    ensure_tools
    mkdir -p "$RUN" "$STATE"
    # Leftovers of runs that were killed before their trap ran.
    local d
    for d in "$RUNS"/run-*; do
        [[ -d $d && $d != "$RUN" ]] || continue
        kill -0 "${d##*/run-}" 2>/dev/null && continue
        for c in $(timeout 5 runc --root "$d/runc-state" list -q 2>/dev/null || true); do
            timeout 10 runc --root "$d/runc-state" delete -f "$c" >/dev/null 2>&1 || true
        done
        rm -rf "$d"
    done
    local t0=$EPOCHREALTIME
    build_rootfs
    local t_rootfs
    t_rootfs=$(secs "$t0" "$EPOCHREALTIME")
    build_pyinit
    log "runc: $(runc --version | head -n1); rlimit NOFILE $NOFILE; logs in $RUN"
    local s t_s
    for s in ${E2E_ONLY:-a b c d e f}; do
        t_s=$EPOCHREALTIME
        log "scenario $s ..."
        "scenario_$s"
        log "scenario $s took $(secs "$t_s" "$EPOCHREALTIME") s"
    done
    echo
    echo "==== pyinit e2e under runc: summary ===="
    printf '%s\n' "${RESULTS[@]}"
    echo "rootfs step: $t_rootfs s; whole run: $(secs "$T_START" "$EPOCHREALTIME") s"
    if ((${#FAILED[@]})); then
        echo "FAILED: ${FAILED[*]}"
        return 1
    fi
    echo "ALL PASSED"
}

main "$@"
