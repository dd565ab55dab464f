#!/usr/bin/env bash
# The whole test suite of pyinit, as CI runs it:
#
#   1. make sure the tools the tests need are installed (unshare from
#      util-linux, file, a C toolchain with libc.a, python3 with venv, the
#      rustfmt and clippy components), installing what is missing when root;
#   2. create or reuse the pinned test venvs: target/test-venv with
#      scripts/test-requirements.txt (gunicorn 27, celery, kombu, uvicorn,
#      Django) and target/test-venv-gunicorn23 with
#      scripts/test-requirements-gunicorn23.txt; and Debian's tini, which
#      tests/stacks.rs can run instead of pyinit for comparison;
#   3. cargo fmt --check, cargo clippy --all-targets -D warnings,
#      cargo test (unit + integration, pyinit as PID 1 under unshare);
#   4. build the static release binary and check that it is static and
#      stripped (scripts/build-static.sh), and print its size;
#   5. run pyinit as the ENTRYPOINT of real runc containers
#      (docker/e2e/run.sh);
#   6. build the pip wheel, install it in a fresh venv and run pyinit from it
#      (scripts/test-wheel.sh);
#   7. where a Docker daemon answers: build the images and run the cases in
#      real Docker, next to `docker run --init` (docker/e2e/docker.sh), the
#      HEALTHCHECK (docker/e2e/health.sh) and a real OOM kill under
#      `docker run --memory 64m` (docker/e2e/oom.sh).
#
# Every check in steps 3-7 runs even when an earlier one failed; the script
# prints a summary and exits non-zero if any step failed. Set-up failures
# (step 1-2) stop it at once. Works without a terminal or stdin.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1

start_all=$SECONDS
section() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. tools
section "checking tools"

apt_updated=0
apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        die "missing: $* (install them, or run this script as root)"
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing: $* (no apt-get to install them)"
    if [[ $apt_updated -eq 0 ]]; then
        note "apt-get update"
        apt-get update -qq </dev/null
        apt_updated=1
    fi
    note "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

missing=()
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
command -v file >/dev/null 2>&1 || missing+=(file)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
# The static build links glibc's libc.a (libc6-dev).
compgen -G "/usr/lib/*-linux-gnu/libc.a" >/dev/null || [[ -e /usr/lib/libc.a ]] || missing+=(libc6-dev)
python3 -c 'import sys' >/dev/null 2>&1 || missing+=(python3)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
fi

command -v cargo >/dev/null 2>&1 || die "cargo is not installed (https://rustup.rs)"
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || die "cargo $component is missing and rustup is not available"
        note "rustup component add $component"
        rustup component add "$component"
    fi
done

note "$(cargo --version)"
note "$(python3 --version 2>&1) ($(command -v python3))"
note "$(unshare --version 2>&1 | head -n 1)"

# ------------------------------------------------------- 2. the test venvs
# Each venv is made once and reinstalled only when its requirements file
# changes (its sha256 is kept in the venv). pip gets exact pins only.
venv_works() {
    [[ -x "$1/bin/python" ]] && "$1/bin/python" -c 'import sys' >/dev/null 2>&1
}

make_venv() {
    rm -rf "$1"
    python3 -m venv "$1" >/dev/null 2>&1 && venv_works "$1"
}

# ensure_venv DIR REQUIREMENTS MODULE...: the venv at DIR holds exactly the
# pins of REQUIREMENTS, and every MODULE imports.
ensure_venv() {
    local venv=$1 requirements=$2
    shift 2
    section "test venv: ${venv#"$root"/}"
    if venv_works "$venv"; then
        note "reusing the existing venv"
    else
        note "creating it with python3 -m venv"
        if ! make_venv "$venv"; then
            # Debian's python3 ships venv (ensurepip) in a separate package.
            note "python3 -m venv failed; installing python3-venv"
            apt_install python3-venv
            make_venv "$venv" || die "python3 -m venv still fails; see: python3 -m venv /tmp/venv-check"
        fi
    fi
    local req_hash stamp imports
    req_hash=$(sha256sum "$requirements" | cut -d' ' -f1)
    stamp="$venv/.pyinit-requirements.sha256"
    imports=$(IFS=,; echo "$*")
    if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$req_hash" ]] ||
        ! "$venv/bin/python" -c "import $imports" >/dev/null 2>&1; then
        note "pip install -r ${requirements#"$root"/}"
        "$venv/bin/python" -m pip install --quiet --no-input -r "$requirements" </dev/null
        echo "$req_hash" >"$stamp"
    fi
    "$venv/bin/python" -c "import $imports" >/dev/null 2>&1 || die "$venv: cannot import $imports"
    note "$("$venv/bin/python" -m pip freeze --quiet </dev/null | grep -iE '^(gunicorn|celery|kombu|uvicorn|django)==' | tr '\n' ' ')"
}

ensure_venv "$root/target/test-venv" "$root/scripts/test-requirements.txt" \
    gunicorn celery kombu uvicorn django
ensure_venv "$root/target/test-venv-gunicorn23" "$root/scripts/test-requirements-gunicorn23.txt" \
    gunicorn

# tini is only a yardstick (STACKS_INIT=/usr/bin/tini cargo test --test
# stacks); its absence fails nothing.
if ! command -v tini >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt_install tini || note "tini could not be installed (only needed for comparisons)"
fi

# ---------------------------------------------------------- 3-4. checks
failed=()
passed=()

# Runs one named check; records the result and never stops the script.
check() {
    local name=$1
    shift
    section "$name"
    printf '    $ %s\n' "$*"
    local t0=$SECONDS
    if "$@" </dev/null; then
        passed+=("$name ($((SECONDS - t0))s)")
    else
        local rc=$?
        failed+=("$name (exit $rc)")
        printf '    FAILED: %s (exit %d)\n' "$name" "$rc"
    fi
}

color=never
[[ -t 1 ]] && color=auto
check "rustfmt" cargo fmt --all -- --check --color="$color"
check "clippy" cargo clippy --all-targets -- -D warnings
check "tests" cargo test --no-fail-fast
check "static release binary" ./scripts/build-static.sh
# pyinit as the ENTRYPOINT of a real OCI container under runc (docker stop's
# TERM, timeout, KILL); builds a cached Debian rootfs on first use.
check "container e2e (runc)" ./docker/e2e/run.sh
# The pip route: build the wheel, pip install it into a fresh venv, run
# `pyinit` and `python -m pyinit` from there.
check "pip wheel" ./scripts/test-wheel.sh
# Real Docker, next to `docker run --init`, wherever a daemon answers; then
# never skipped (E2E_REQUIRE=1: a missing piece fails the check).
if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
    check "docker e2e" env E2E_REQUIRE=1 ./docker/e2e/docker.sh
    # HEALTHCHECK CMD ["/pyinit", "health"] under the daemon.
    check "docker HEALTHCHECK" env E2E_PYINIT=target/x86_64-unknown-linux-gnu/release/pyinit ./docker/e2e/health.sh
    # A real OOM kill under `docker run --memory 64m`.
    check "OOM report under docker run --memory" ./docker/e2e/oom.sh
else
    section "docker e2e"
    note "not run: no Docker daemon answers 'docker info' (docker/e2e/run.sh above covers the stop cases with runc)"
fi

# ----------------------------------------------------------------- summary
section "summary ($((SECONDS - start_all))s)"
for p in "${passed[@]}"; do
    printf '    ok      %s\n' "$p"
done
for f in "${failed[@]+"${failed[@]}"}"; do
    printf '    FAILED  %s\n' "$f"
done
if [[ ${#failed[@]} -gt 0 ]]; then
    exit 1
fi
echo "    all checks passed"
