#!/usr/bin/env bash
# docker/e2e/rootfs.sh -- the Debian bookworm root file system the container
# tests run on, built once with mmdebstrap and cached in target/e2e-rootfs/.
#
# run.sh (runc) uses it as the containers' read-only root; docker.sh imports
# it into Docker as the base image `pyinit-python-base` (there is no registry
# to pull python:slim from). Packages: python3 (3.11), python3-venv (so
# `python3 -m venv` and pip work offline, as in python:slim), gunicorn,
# ca-certificates. Prints the rootfs path on stdout; progress on stderr.
#
# Environment: E2E_MIRROR (Debian mirror URL; default: the first .../debian
# URI of the host's apt sources), E2E_REBUILD_ROOTFS=1 (build it again).
# Needs root and mmdebstrap (installed with apt when missing). A lock keeps
# two runs from building it at once; a marker file, written last, names the
# package list, so a changed list rebuilds the cache.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
CACHE=$REPO/target/e2e-rootfs
ROOTFS=$CACHE/rootfs
MARKER=$CACHE/complete
PACKAGES=python3,python3-venv,gunicorn,ca-certificates

say() { printf 'rootfs: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "needs root (mmdebstrap and the bind mounts run as root here)"

# The Debian mirror this machine's apt uses (the first .../debian URI), so the
# rootfs comes from where apt already can reach.
detect_mirror() {
    if [[ -n ${E2E_MIRROR:-} ]]; then echo "$E2E_MIRROR"; return; fi
    local m
    m=$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z+]+://[^[:space:]]+/debian/?([[:space:]]|$)' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -oE '[a-z+]+://[^[:space:]]+' | head -n1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

complete() {
    [[ -f $MARKER && $(sed -n 's/^packages: //p' "$MARKER") == "$PACKAGES" \
        && -x $ROOTFS/usr/bin/python3 && -x $ROOTFS/usr/bin/gunicorn \
        && -f $ROOTFS/pyinit && -d $ROOTFS/app && -d $ROOTFS/out ]]
}

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
timeout 900 flock 9 || die "timed out waiting for another run's rootfs build"
if [[ ${E2E_REBUILD_ROOTFS:-0} == 1 ]]; then rm -f "$MARKER"; fi
if complete; then
    say "cached ($ROOTFS, $(head -n1 "$MARKER"))"
    echo "$ROOTFS"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null; then
    command -v apt-get >/dev/null || die "mmdebstrap is missing and there is no apt-get"
    say "installing mmdebstrap"
    timeout 300 apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 600 \
        apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null \
        || die "apt-get install mmdebstrap failed"
fi

mirror=$(detect_mirror)
t0=$SECONDS
tmp=$CACHE/rootfs.tmp
say "building bookworm minbase + $PACKAGES from $mirror (first run only, ~40 s)"
rm -rf "$tmp" "$ROOTFS" "$MARKER"
timeout 900 mmdebstrap --variant=minbase --include="$PACKAGES" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$tmp" "deb $mirror bookworm main" \
    </dev/null >"$CACHE/mmdebstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $CACHE/mmdebstrap.log)"; }
# Mount points for run.sh's bind mounts: runc would create them inside the
# (shared, read-only) rootfs on first use; create them here, before the marker.
# docker.sh leaves them out of the imported image.
: >"$tmp/pyinit"
mkdir -p "$tmp/app" "$tmp/out"
mv "$tmp" "$ROOTFS"
{
    echo "bookworm from $mirror, built $(date -u +%FT%TZ) in $((SECONDS - t0)) s"
    echo "packages: $PACKAGES"
    chroot "$ROOTFS" dpkg-query -W python3 gunicorn 2>/dev/null || true
} >"$MARKER"
say "built in $((SECONDS - t0)) s ($(du -sh "$ROOTFS" | cut -f1))"
echo "$ROOTFS"
