#!/usr/bin/env bash
# docker/e2e/oom.sh -- pyinit reports a real OOM kill inside `docker run
# --memory 64m`, as the container's ENTRYPOINT (SPEC "Out-of-memory kills").
#
# No registry is needed: the base image is imported from run.sh's Debian
# rootfs (target/e2e-rootfs/rootfs, built by run.sh when missing) and the
# static pyinit (scripts/build-static.sh) is copied in. Skips (exit 0, one
# line) when no Docker daemon answers; E2E_REQUIRE=1 makes that a failure.
# Inside the container the cgroup mount is read-only, so pyinit cannot
# register the v1 eventfd and reads the counter once a second instead: the
# report can come up to a second after the kill.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
ROOTFS=$REPO/target/e2e-rootfs/rootfs
BASE=pyinit-e2e-base
IMAGE=pyinit-e2e-oom
TMP=$(mktemp -d)
NAMES=()
FAILED=()

skip() {
    if [[ ${E2E_REQUIRE:-0} == 1 ]]; then echo "ERROR: $*" >&2; exit 1; fi
    echo "SKIP: $*"
    exit 0
}
command -v docker >/dev/null || skip "no docker client"
timeout 20 docker info >/dev/null 2>&1 || skip "no Docker daemon reachable (docker info failed)"

cleanup() {
    local rc=$? n
    for n in "${NAMES[@]+"${NAMES[@]}"}"; do timeout 30 docker rm -f "$n" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- images
if ! timeout 20 docker image inspect "$BASE" >/dev/null 2>&1; then
    if [[ ! -f $REPO/target/e2e-rootfs/complete ]]; then
        echo "building the Debian rootfs with run.sh (no scenario)"
        E2E_ONLY=" " "$HERE/run.sh" >/dev/null
    fi
    echo "importing $ROOTFS as $BASE"
    tar -C "$ROOTFS" -c . | timeout 300 docker import - "$BASE" >/dev/null
fi
echo "building the static pyinit"
(cd "$REPO" && timeout 900 ./scripts/build-static.sh >/dev/null)
cp "$REPO/target/x86_64-unknown-linux-gnu/release/pyinit" "$TMP/pyinit"
printf 'FROM %s\nCOPY pyinit /pyinit\nENTRYPOINT ["/pyinit"]\n' "$BASE" >"$TMP/Dockerfile"
timeout 300 docker build -q -t "$IMAGE" "$TMP" >/dev/null

# ---------------------------------------------------------------- scenarios
HOG="import time; time.sleep(0.3); b = bytearray(200 << 20); print('survived')"
OOM="was killed by the kernel's OOM killer"

# run NAME PYINIT-ARGS...: docker run --memory 64m (no swap), foreground;
# sets RC and leaves the streams in $TMP/NAME.{out,err}.
run() {
    local name=pyinit-e2e-oom-$$-$1
    shift
    NAMES+=("$name")
    RC=0
    timeout 120 docker run --name "$name" --network none --memory 64m --memory-swap 64m \
        "$IMAGE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" || RC=$?
    OUT=$TMP/$name.out
    ERR=$TMP/$name.err
    DOCKER_OOM=$(timeout 30 docker inspect -f '{{.State.OOMKilled}}' "$name" 2>/dev/null || echo "?")
}

expect() {  # expect DESCRIPTION CONDITION...
    local what=$1
    shift
    if "$@"; then
        echo "  ok    $what"
    else
        echo "  FAIL  $what"
        FAILED+=("$what")
    fi
}

echo "scenario 1: python allocates 200 MiB in a 64 MiB container"
run raw -- python3 -c "$HOG"
sed 's/^/  err| /' "$ERR"
expect "exit status 137" test "$RC" = 137
expect "one line names the process" test "$(grep -c "^pyinit: python3 [0-9]* (.*python3 -c import time.*) $OOM (memory limit 64 MiB, peak [0-9]* MiB)$" "$ERR")" = 1
expect "the last line says the main process died of it" \
    test "$(tail -n1 "$ERR")" = "pyinit: warning: the main process (python3) $OOM; exiting with status 137"
expect "it did not survive" test "$(grep -c survived "$OUT")" = 0
echo "  (docker inspect: OOMKilled=$DOCKER_OOM)"

echo "scenario 2: the same in --log-format json"
run json --log-format json -- python3 -c "$HOG"
sed 's/^/  err| /' "$ERR"
expect "exit status 137" test "$RC" = 137
expect "an oom_kill record with the limit" python3 - "$ERR" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
oom = [r for r in recs if r.get("event") == "oom_kill"]
assert len(oom) == 1, oom
r = oom[0]
assert r["process"] == "python3" and r["process_pid"] > 1, r
assert "python3 -c import time" in r["cmd"], r
assert r["limit_bytes"] == 64 << 20, r
assert r["peak_bytes"] is None or r["peak_bytes"] <= 64 << 20, r
EOF

if ((${#FAILED[@]})); then
    echo "FAILED: ${#FAILED[@]} expectation(s)"
    exit 1
fi
echo "ALL PASSED"
