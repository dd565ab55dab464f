#!/usr/bin/env bash
# Builds the pip wheel of pyinit:
#   target/wheels/pyinit-<ver>-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#
# The wheel holds the statically linked binary, built the same way
# scripts/build-static.sh builds it (x86_64-unknown-linux-gnu, +crt-static,
# non-PIE, explicit --target), installed by pip into the environment's bin/
# (maturin's `bindings = "bin"`, as ruff and uv ship theirs), and the small
# `pyinit` package of python/ for `python -m pyinit`.
#
# Why manylinux_2_17 (manylinux2014): the binary needs no shared library, not
# even libc, so the glibc version a manylinux tag names does not limit it;
# the kernel does. Static glibc 2.36 refuses kernels older than 3.2 ("FATAL:
# kernel too old") and pyinit needs PR_SET_CHILD_SUBREAPER (3.4). The
# reference platforms of manylinux1 (CentOS 5, kernel 2.6.18) and
# manylinux2010 (CentOS 6, 2.6.32) are older than that; manylinux2014's
# (CentOS 7, 3.10) is the oldest that runs it. pip >= 19.3 understands the
# tag (every pip of Python >= 3.8).
#
# maturin is pinned and installed into target/wheel-venv from PyPI (the only
# download); cargo's crates come from its usual cache. Prints the wheel's
# path and size; checks that the binary inside is the static one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

MATURIN_VERSION=1.9.6
target=x86_64-unknown-linux-gnu
compat=manylinux_2_17
venv=$root/target/wheel-venv
out=$root/target/wheels
export PIP_DISABLE_PIP_VERSION_CHECK=1

die() { printf 'build-wheel: error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
command -v cargo >/dev/null || die "cargo is needed (https://rustup.rs)"

# ------------------------------------------------------- the build venv
if [[ "$("$venv/bin/maturin" --version 2>/dev/null || true)" != "maturin $MATURIN_VERSION" ]]; then
    echo "==> target/wheel-venv: pip install maturin==$MATURIN_VERSION"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --quiet --no-input "maturin==$MATURIN_VERSION" </dev/null \
        || die "pip install maturin==$MATURIN_VERSION failed"
fi

# ------------------------------------------------------------ the wheel
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
[[ -n $version ]] || die "no version in Cargo.toml"
rm -f "$out"/pyinit-"$version"-*.whl
echo "==> maturin build --release --target $target --compatibility $compat (+crt-static, non-PIE)"
# The same flags as scripts/build-static.sh; --target keeps them away from
# proc-macros, which cannot be linked statically.
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static -C relocation-model=static" \
    "$venv/bin/maturin" build --release --locked --target "$target" --compatibility "$compat" \
    --out "$out" </dev/null

shopt -s nullglob
wheels=("$out"/pyinit-"$version"-py3-none-*.whl)
[[ ${#wheels[@]} -eq 1 ]] || die "expected one wheel in ${out#"$root"/}, found ${#wheels[@]}"
wheel=${wheels[0]}

# ------------------------------------------------- check what is inside
"$venv/bin/python" - "$wheel" "$version" <<'EOF' || die "the wheel's contents are wrong"
import sys, zipfile, tempfile, os, subprocess
wheel, version = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
names = z.namelist()
binary = f"pyinit-{version}.data/scripts/pyinit"
want = [binary, "pyinit/__init__.py", "pyinit/__main__.py", "pyinit/_find.py"]
missing = [n for n in want if n not in names]
if missing:
    sys.exit(f"missing from the wheel: {missing}; it has {names}")
info = z.getinfo(binary)
if (info.external_attr >> 16) & 0o111 == 0:
    sys.exit(f"{binary} is not executable in the wheel")
with tempfile.TemporaryDirectory() as d:
    path = z.extract(binary, d)
    os.chmod(path, 0o755)
    ldd = subprocess.run(["ldd", path], capture_output=True, text=True)
    text = (ldd.stdout + ldd.stderr).strip()
    if "statically linked" not in text and "not a dynamic executable" not in text:
        sys.exit(f"the binary in the wheel is not static: ldd says {text!r}")
    size = os.path.getsize(path)
print(f"binary: {binary}, {size} bytes, static")
EOF

size=$(stat -c %s "$wheel")
printf '%s\n' "${wheel#"$root"/}"
printf 'size: %s bytes (%s KiB)\n' "$size" "$(( (size + 1023) / 1024 ))"
