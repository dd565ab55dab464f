#!/usr/bin/env bash
# The pip route, tested as a user takes it: build the wheel
# (scripts/build-wheel.sh), install it with pip into a fresh venv (no index:
# only the wheel), and run pyinit from there through both entry points.
#
#   ./scripts/test-wheel.sh        (run by scripts/test.sh)
#
# Checks: `pyinit --version` and `python -m pyinit --version` print the
# crate's version; `pyinit -- python3 -c 'print(1)'` (and the same through
# `python -m pyinit`) prints 1 and exits 0; an exit status comes through;
# the installed binary is the static one. Every step is bounded in time.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1

fail() { printf 'test-wheel: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'test-wheel: ok   %s\n' "$*"; }

build_out=$(./scripts/build-wheel.sh 2>&1) || { printf '%s\n' "$build_out" | tail -n 30; fail "scripts/build-wheel.sh failed"; }
wheel=$(printf '%s\n' "$build_out" | grep -E '^target/wheels/.*\.whl$' | tail -n1)
[[ -n $wheel && -f $wheel ]] || { printf '%s\n' "$build_out" | tail -n 10; fail "no wheel path in build-wheel.sh's output"; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
ok "built $wheel ($(stat -c %s "$wheel") bytes)"

tmp=$(mktemp -d "$root/target/test-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
venv=$tmp/venv
timeout 120 python3 -m venv "$venv" || fail "python3 -m venv failed"
# --no-index: only this wheel, nothing from PyPI (the wheel has no dependencies).
timeout 120 "$venv/bin/python" -m pip install --quiet --no-input --no-index "$wheel" </dev/null \
    || fail "pip install $wheel failed"
ok "pip install ${wheel##*/} into a fresh venv"

[[ -x $venv/bin/pyinit ]] || fail "pip did not install $venv/bin/pyinit"
ldd_out=$(ldd "$venv/bin/pyinit" 2>&1 || true)
[[ $ldd_out == *"statically linked"* || $ldd_out == *"not a dynamic executable"* ]] \
    || fail "the installed pyinit is not static: $ldd_out"
ok "venv/bin/pyinit is the static binary"

# expect NAME WANT_STATUS WANT_STDOUT COMMAND...: run COMMAND with the venv
# on PATH (as `source venv/bin/activate` does) and compare.
expect() {
    local name=$1 want_rc=$2 want_out=$3 rc=0 out
    shift 3
    out=$(cd "$tmp" && PATH="$venv/bin:$PATH" timeout 30 "$@" </dev/null 2>"$tmp/err") || rc=$?
    if [[ $rc -ne $want_rc || $out != "$want_out" ]]; then
        printf '    stdout: %s\n    stderr: %s\n' "$out" "$(head -c 2000 "$tmp/err")" >&2
        fail "$name: exit $rc (want $want_rc), stdout '$out' (want '$want_out')"
    fi
    ok "$name -> '$out', exit $rc"
}

expect "pyinit --version" 0 "pyinit $version" pyinit --version
expect "python -m pyinit --version" 0 "pyinit $version" python -m pyinit --version
expect "pyinit -- python3 -c 'print(1)'" 0 1 pyinit -- python3 -c 'print(1)'
expect "python -m pyinit -- python3 -c 'print(1)'" 0 1 python -m pyinit -- python3 -c 'print(1)'
expect "the exit status comes through" 3 "" pyinit -- python3 -c 'raise SystemExit(3)'
# Not on PATH: the absolute path, as a Dockerfile's ENTRYPOINT names it.
expect "$venv/bin/pyinit by path" 0 1 "$venv/bin/pyinit" -- python3 -c 'print(1)'
expect "$venv/bin/python -m pyinit by path" 0 "pyinit $version" "$venv/bin/python" -m pyinit --version
echo "test-wheel: all passed"
