#!/usr/bin/env bash
# Builds the statically linked release binary of pyinit:
#   target/x86_64-unknown-linux-gnu/release/pyinit
# glibc is linked in (+crt-static), so the binary runs in a `FROM scratch`
# image or any distroless base. `--target` is required: without it the
# RUSTFLAGS would also apply to proc-macros, which cannot be static.
# Checks the result with `file` and `ldd`, prints its path and size.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-gnu
bin="target/$target/release/pyinit"

# relocation-model=static: a plain static executable instead of static-pie
# saves ~70 KB of relocations; an init gains nothing from a movable image.
echo "==> cargo build --release --target $target (+crt-static, non-PIE)"
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --target "$target"

if [[ ! -x "$bin" ]]; then
    echo "error: $bin was not built" >&2
    exit 1
fi

fail=0
if command -v file >/dev/null 2>&1; then
    desc=$(file -b "$bin")
    echo "file: $desc"
    if [[ "$desc" != *static* ]]; then
        echo "error: $bin is not statically linked" >&2
        fail=1
    fi
    if [[ "$desc" != *stripped* || "$desc" == *"not stripped"* ]]; then
        echo "error: $bin is not stripped" >&2
        fail=1
    fi
else
    echo "warning: 'file' is not installed; skipping the file check" >&2
fi

# ldd exits 1 for a static binary; only its message matters.
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd:  $(echo "$ldd_out" | head -n 1 | sed 's/^[[:space:]]*//')"
if ! grep -qE 'statically linked|not a dynamic executable' <<<"$ldd_out"; then
    echo "error: ldd lists shared libraries for $bin:" >&2
    echo "$ldd_out" >&2
    fail=1
fi
[[ $fail -eq 0 ]] || exit 1

size=$(stat -c %s "$bin")
printf '%s\n' "$bin"
printf 'size: %s bytes (%s KiB)\n' "$size" "$(( (size + 1023) / 1024 ))"
