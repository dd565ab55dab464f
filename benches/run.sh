#!/usr/bin/env bash
# Benchmarks pyinit against tini, dumb-init and catatonit; writes benches/RESULTS.md.
#
#   benches/run.sh [--quick] [--no-install] [--no-build] [--pyinit PATH] [--only SECTIONS] [--output FILE]
#
# 1. installs the peers from Debian where missing (tini, dumb-init, catatonit, hyperfine),
# 2. builds the static release binary of pyinit
#    (scripts/build-static.sh: +crt-static, non-PIE, --target x86_64-unknown-linux-gnu),
# 3. runs benches/bench.py, which compiles the C helpers into target/bench/ and measures
#    every init in the same run, interleaved round by round.
# Needs root (PID namespaces, /proc of other processes), gcc, python3 and util-linux's unshare.
# Every step is bounded in time. See benches/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

cmdline="benches/run.sh${*:+ $*}"
quick=0 install=1 build=1 pyinit=""
args=()
while (($#)); do
    case "$1" in
        --quick) quick=1; args+=("$1") ;;
        --no-install) install=0 ;;
        --no-build) build=0 ;;
        --pyinit) pyinit="$2"; args+=("$1" "$2"); shift ;;
        --pyinit=*) pyinit="${1#*=}"; args+=("$1") ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1") ;;
    esac
    shift
done

say() { printf '[run.sh] %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
    say "needs root (PID namespaces, apt-get); run it as root"
    exit 1
fi
for tool in gcc python3 unshare file; do
    command -v "$tool" >/dev/null || { say "missing tool: $tool"; exit 1; }
done

# 1. The peers, from Debian's packages.
if ((install)); then
    want=(tini dumb-init catatonit hyperfine)
    missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        have_candidates() {
            for p in "${missing[@]}"; do
                timeout 60 apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]' || return 1
            done
        }
        if ! have_candidates; then
            say "apt-get update (package lists lack: ${missing[*]})"
            timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -qq || say "apt-get update failed"
        fi
        installable=()
        for p in "${missing[@]}"; do
            if timeout 60 apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
                installable+=("$p")
            else
                say "no Debian package named $p here; it will be skipped"
            fi
        done
        if ((${#installable[@]})); then
            say "apt-get install ${installable[*]}"
            DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq \
                "${installable[@]}" >/dev/null || say "apt-get install failed; the missing inits are skipped"
        fi
    fi
fi

# 2. The static release binary.
if ((build)) && [[ -z $pyinit ]]; then
    say "scripts/build-static.sh (the shipped static binary)"
    if ! timeout 1200 "$here/../scripts/build-static.sh" >/dev/null; then
        say "build failed"
        exit 1
    fi
fi

# 3. The health-probe cost (benches/PROBE-RESULTS.md, which RESULTS.md
# includes); a failure here only leaves the older table in place.
if ! ((quick)); then
    say "benches/probe.sh (pyinit health vs curl vs python urllib)"
    timeout 600 "$here/probe.sh" --no-build >/dev/null || say "probe.sh failed; keeping the older PROBE-RESULTS.md"
fi

# 4. Measure. The harness bounds every step itself; this is the outer bound.
if ((quick)); then limit=300; else limit=3600; fi
say "running benches/bench.py (at most ${limit}s)"
exec timeout --kill-after=30 "$limit" python3 "$here/bench.py" "${args[@]}" --command-line "$cmdline"
