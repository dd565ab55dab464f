#!/usr/bin/env python3
"""Why two harnesses disagreed about pyinit's capture throughput.

    python3 benches/consumer_matrix.py [--rounds N] PYINIT [PYINIT...]

Measures `PYINIT -- logwriter 1` against the same writer piped straight into
the checker, for the two consumers and two line lengths that the earlier
figures used: the old `benches/` reader (one poll() and then a read of up to
8 MiB) with 120-byte lines, and a runtime's log copier (plain 32 KiB reads)
with 100-byte lines, as the independent harness had. Rounds are interleaved;
prints the median ratio and every per-round ratio. Needs the helpers built by
bench.py (run benches/run.sh once) and root. Standard library only.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402

VARIANTS = [
    ("old reader (poll, then read up to 8 MiB), 120 B lines", 119, True),
    ("old reader, 100 B lines", 99, True),
    ("runtime-like reader (32 KiB reads), 120 B lines", 119, False),
    ("runtime-like reader, 100 B lines", 99, False),
]


def one(lc, line_len, old, tmp):
    """One run; the old reader is logcheck with an idle poll and 8 MiB reads."""
    real = subprocess.Popen

    def popen(args, *a, **k):
        if old and any(str(x).endswith("logcheck") for x in list(args)[:4]):
            args = list(args[:-3]) + ["10000", "0", str(8 << 20)]
        return real(args, *a, **k)

    bench.LINE_LEN = line_len
    subprocess.Popen = popen
    try:
        return bench.log_run(lc, 1, 256 * bench.MIB // (line_len + 1), tmp, 0)
    finally:
        subprocess.Popen = real


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("pyinit", nargs="+")
    a = ap.parse_args()
    bench.build_helpers()
    pipe = bench.LogConfig("pipe", bench.NONE, capture=False)
    inits = [bench.LogConfig(p, bench.Init("pyinit", p)) for p in a.pyinit]
    res = {}
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        for r in range(a.rounds):
            for label, line_len, old in bench.rotated(VARIANTS, r):
                base = one(pipe, line_len, old, tmp)["mib_s"]
                for lc in inits:
                    got = one(lc, line_len, old, tmp)["mib_s"]
                    res.setdefault((lc.label, label), []).append(got / base)
    for (who, label), rs in res.items():
        print(f"{who}  {label}: median {bench.median(rs):.2f}x, per round "
              + " ".join(f"{x:.2f}" for x in rs))


if __name__ == "__main__":
    main()
