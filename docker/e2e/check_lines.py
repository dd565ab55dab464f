#!/usr/bin/env python3
"""Scenario d's checker: did every line app/lines.py wrote arrive whole?

Usage: check_lines.py N STDOUT_FILE STDERR_FILE
Prints one summary line; exit 0 when stdout holds exactly the N expected lines
in order and stderr holds the expected `err` lines in order (lines starting
with `pyinit:` -- pyinit's own diagnostics -- are set aside), else 1.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "app"))
from lines import expected  # noqa: E402


def compare(name, got, want):
    """Return a list of problems (empty when got == want)."""
    if got == want:
        return []
    problems = [f"{name}: {len(got)} lines, expected {len(want)}"]
    want_set, got_set = set(want), set(got)
    missing = [w for w in want if w not in got_set]
    garbled = [g for g in got if g not in want_set]
    if missing:
        problems.append(
            f"{name}: {len(missing)} missing, first: {missing[0][:60]!r}"
        )
    if garbled:
        problems.append(
            f"{name}: {len(garbled)} split/garbled/unexpected, first: {garbled[0][:80]!r}"
        )
    if not missing and not garbled:
        problems.append(f"{name}: same lines, different order")
    return problems


def main():
    n = int(sys.argv[1])
    with open(sys.argv[2], "rb") as f:
        out = f.read()
    with open(sys.argv[3], "rb") as f:
        err = f.read()
    problems = []
    if out and not out.endswith(b"\n"):
        problems.append("stdout: does not end in a newline (a partial line)")
    out_lines = out.decode("utf-8", "replace").splitlines()
    err_lines = [
        l for l in err.decode("utf-8", "replace").splitlines()
        if not l.startswith("pyinit:")
    ]
    want_out = expected(n, "stdout")
    want_err = expected(n, "stderr")
    problems += compare("stdout", out_lines, want_out)
    problems += compare("stderr", err_lines, want_err)
    if problems:
        print("; ".join(problems))
        return 1
    print(
        f"all {len(want_out)} stdout lines ({len(out)} bytes, longest "
        f"{max(map(len, want_out))}) and {len(want_err)} stderr lines whole and in order"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
