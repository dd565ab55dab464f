#!/usr/bin/env bash
# Try pyinit: build the static binary, run it as PID 1 of a fresh PID
# namespace (as in a container) on examples/app.py, wait until the app is
# ready, send SIGTERM from outside as `docker stop` does, and show how long
# the stop took and the exit status.
#
#   ./scripts/demo.sh [PYINIT OPTIONS]      e.g. ./scripts/demo.sh --log-format json
#
# Environment: DEMO_RUN_SECONDS (how long the app runs before the SIGTERM,
# default 2.5); DEMO_WITHOUT_PYINIT=1 then runs the same app as PID 1 with no
# init, for comparison (its print() lines arrive in buffered bursts); PYINIT_*
# variables are read by pyinit itself.
# Needs bash, python3 and unshare (util-linux). Every wait is bounded, and
# nothing reads from stdin.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_seconds=${DEMO_RUN_SECONDS:-2.5}
ready_timeout=20

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
[[ -t 1 ]] || say() { printf 'demo: %s\n' "$*"; }

command -v python3 >/dev/null 2>&1 || { echo "demo: python3 is needed" >&2; exit 1; }

say "building the static binary"
./scripts/build-static.sh 2>&1 | sed 's/^/    /'
bin=target/x86_64-unknown-linux-gnu/release/pyinit

# Run pyinit as PID 1 when this machine allows a PID namespace (root, or
# unprivileged user namespaces); otherwise as a plain child, where it
# registers as child subreaper and behaves the same.
launcher=()
if [[ $(id -u) -eq 0 ]]; then
    ns=(unshare --pid --fork --mount-proc --)
else
    ns=(unshare --user --map-root-user --pid --fork --mount-proc --)
fi
if command -v unshare >/dev/null 2>&1 && "${ns[@]}" true >/dev/null 2>&1; then
    launcher=("${ns[@]}")
    where="as PID 1 in a new PID namespace (${ns[*]:0:${#ns[@]}-1})"
else
    where="as a plain child process (unshare is not available or not permitted here)"
fi

tmp=$(mktemp -d)
outer=""
pid1=""
reader=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ -n "$outer" ]]; then
        # PID 1 of a namespace takes every process in it along when killed.
        [[ -n "$pid1" ]] && kill -KILL "$pid1" 2>/dev/null
        kill -KILL "$outer" 2>/dev/null || true
    fi
    if [[ -n "$reader" ]]; then wait "$reader" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

show_processes() {
    local top=$1 pids p
    pids=$top
    for p in $(ps -o pid= --ppid "$top" 2>/dev/null || true); do
        pids="$pids $p $(ps -o pid= --ppid "$p" 2>/dev/null || true)"
    done
    # shellcheck disable=SC2086 # a list of pids
    ps -o pid,pgid,sid,args -p "$(echo $pids | tr ' ' ,)" 2>/dev/null | sed 's/^/    /' || true
}

# run_once: runs "$@" the way a container runtime would (as PID 1 when
# possible), waits for the ready line, then does what `docker stop` does:
# SIGTERM, up to 10 s, then SIGKILL. Sets $status and $took.
run_once() {
    rm -f "$tmp/out" "$tmp/log"
    mkfifo "$tmp/out"
    local t0=$EPOCHREALTIME
    # Stamp each output line with the time since start, to show when lines
    # really arrive.
    (
        while IFS= read -r line || [[ -n "$line" ]]; do
            printf '  %6ss | %s\n' "$(elapsed "$t0")" "$line"
            printf '%s\n' "$line" >>"$tmp/log"
        done <"$tmp/out"
    ) &
    reader=$!

    # A shell starts background commands with SIGINT and SIGQUIT ignored,
    # and pyinit hands ignored signals on to the app (as tini does);
    # `env --default-signal` gives it the defaults a container runtime would.
    # PYTHONUNBUFFERED is removed so that the run shows what pyinit adds,
    # as in a plain python image.
    env --default-signal=INT,QUIT -u PYTHONUNBUFFERED \
        "${launcher[@]}" "$@" >"$tmp/out" 2>&1 </dev/null &
    outer=$!

    # The container's PID 1 as seen from here: the child of unshare.
    pid1=""
    local _
    for _ in $(seq 1 200); do
        if [[ ${#launcher[@]} -eq 0 ]]; then
            pid1=$outer
        else
            pid1=$(cat /proc/"$outer"/task/*/children 2>/dev/null | awk '{ print $1 }')
        fi
        [[ -n "$pid1" ]] && break
        sleep 0.05
    done
    [[ -n "$pid1" ]] || { echo "demo: the command did not start" >&2; exit 1; }

    # Wait for the ready line; without an init (the comparison run) the
    # output may never come, so that run just waits two seconds.
    local ready=0
    [[ $wait_ready -eq 1 ]] || { sleep 2; ready=1; }
    for _ in $(seq 1 $((ready_timeout * 20))); do
        [[ $ready -eq 1 ]] && break
        if grep -q 'main: ready' "$tmp/log" 2>/dev/null; then
            ready=1
            break
        fi
        kill -0 "$outer" 2>/dev/null || break
        sleep 0.05
    done
    if [[ $ready -eq 0 ]]; then
        echo "demo: the app did not print its ready line within ${ready_timeout}s" >&2
        exit 1
    fi

    echo
    say "processes (host pids):"
    show_processes "$pid1"
    echo
    sleep "$run_seconds"
    echo
    say "sending SIGTERM to PID 1 (host pid $pid1) at +$(elapsed "$t0")s, as docker stop does"
    echo
    local stop_at=$EPOCHREALTIME
    kill -TERM "$pid1"

    local killed=0
    for _ in $(seq 1 200); do
        kill -0 "$outer" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$outer" 2>/dev/null; then
        killed=1
        echo
        say "still running 10s after SIGTERM: SIGKILL, as docker stop does"
        kill -KILL "$pid1" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$outer" 2>/dev/null || break
            sleep 0.05
        done
    fi
    status=0
    wait "$outer" || status=$?
    outer=""
    took=$(elapsed "$stop_at")
    wait "$reader" 2>/dev/null || true
    reader=""
    echo
    if [[ $killed -eq 1 ]]; then
        # (unshare reports a SIGKILLed child as status 1; docker says 137.)
        say "killed by SIGKILL $took s after SIGTERM: the jobs in hand were lost, and so was"
        say "every print() line still in the app's buffers"
    else
        say "exit status $status, $took s after SIGTERM"
    fi
}

cmd=("$bin" "$@" -- python3 examples/app.py)
say "running ${cmd[*]}"
say "$where"
echo
wait_ready=1
run_once "${cmd[@]}"
pyinit_status=$status
if [[ $status -eq 0 ]]; then
    say "every process finished its job and exited 0; nothing needed SIGKILL"
fi

if [[ "${DEMO_WITHOUT_PYINIT:-0}" == 1 ]]; then
    echo
    say "for comparison, the same app as PID 1 without an init: python3 examples/app.py"
    say "(no PYTHONUNBUFFERED, as in a plain python image: print() output waits in a buffer)"
    echo
    wait_ready=0
    run_once python3 examples/app.py
fi
exit "$pyinit_status"
