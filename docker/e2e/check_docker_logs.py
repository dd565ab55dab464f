#!/usr/bin/env python3
"""The docker logs case's checker: did app/workers.py's lines come out of
`docker logs` whole, and did Docker's json-file driver have to split any?

Usage: check_docker_logs.py raw|json WORKERS PER_WORKER STDOUT_FILE JSON_LOG_FILE

STDOUT_FILE is `docker logs`' stdout; JSON_LOG_FILE the container's json-file
log (`docker inspect -f '{{.LogPath}}'`), one JSON entry per message the
driver stored. Docker stores at most 16 KiB per entry: a longer line becomes
several entries, all but the last without a trailing newline ("split" below;
`docker logs` joins them again, other log shippers often do not).

raw: every line of every worker arrives whole and in its worker's order, and
so does every long line of the main process.
json: the same after joining pyinit's `"partial": true` pieces, and every
record is one whole JSON object of at most 16 KiB, so the driver split none.
Prints one summary line; exit 0 when all holds, else 1.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "app"))
from workers import expected  # noqa: E402

DOCKER_MAX = 16 * 1024


def driver_entries(path):
    """(stdout entries, of which split) in the json-file log."""
    total = split = 0
    with open(path, encoding="utf-8") as f:
        for raw in f:
            entry = json.loads(raw)
            if entry.get("stream") != "stdout":
                continue
            total += 1
            if not entry["log"].endswith("\n"):
                split += 1
    return total, split


def json_lines(text, problems):
    """Join pyinit's json records back into the lines the app wrote."""
    lines, acc, longest = [], [], 0
    for n, rec_text in enumerate(text.split("\n")[:-1], 1):
        longest = max(longest, len(rec_text.encode()) + 1)
        try:
            rec = json.loads(rec_text)
        except ValueError:
            problems.append(f"record {n} is not one JSON object: {rec_text[:80]!r}")
            continue
        if not isinstance(rec, dict) or not {"ts", "name", "pid", "stream", "line"} <= rec.keys():
            problems.append(f"record {n} lacks ts/name/pid/stream/line: {rec_text[:80]!r}")
            continue
        if rec["name"] == "pyinit":
            continue
        acc.append(rec["line"])
        if not rec.get("partial"):
            lines.append("".join(acc))
            acc = []
    if acc:
        problems.append("the last line's pieces never ended (partial at the end)")
    if longest > DOCKER_MAX:
        problems.append(f"a record of {longest} bytes, over Docker's {DOCKER_MAX}")
    return lines, longest


def main():
    mode, workers, per_worker, out_path, log_path = sys.argv[1:6]
    workers, per_worker = int(workers), int(per_worker)
    with open(out_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    problems = []
    if text and not text.endswith("\n"):
        problems.append("stdout does not end in a newline (a partial line)")
    if mode == "json":
        lines, longest = json_lines(text, problems)
    else:
        lines = text.split("\n")[:-1]
        longest = max((len(l) for l in lines), default=0)
    per, main_lines = expected(workers, per_worker)
    got_main = [l for l in lines if l.startswith("long ")]
    if got_main != main_lines:
        problems.append(
            f"long lines: {len(got_main)} of {len(main_lines)} whole and in order "
            f"(lengths seen {sorted({len(l) for l in got_main})[:8]})"
        )
    known = len(got_main)
    for w, want in per.items():
        got = [l for l in lines if l.startswith(f"w{w} ")]
        known += len(got)
        if got != want:
            bad = next((g for g, e in zip(got, want) if g != e), None)
            problems.append(
                f"worker {w}: {len(got)} lines, expected {len(want)}"
                + (f", first wrong: {bad[:60]!r}" if bad else "")
            )
    if known != len(lines):
        prefixes = ("long ",) + tuple(f"w{w} " for w in per)
        other = [l for l in lines if not l.startswith(prefixes)]
        problems.append(f"{len(other)} garbled or unexpected lines, e.g. {other[0][:80]!r}")
    total, split = driver_entries(log_path)
    if mode == "json" and split:
        problems.append(f"Docker split {split} of pyinit's JSON records")
    n_worker = workers * per_worker
    summary = (
        f"{n_worker} worker lines ({workers} workers) and {len(main_lines)} long lines "
        f"(16,385-100,000 bytes) whole and in order; longest {'record' if mode == 'json' else 'line'} "
        f"{longest} bytes; json-file entries {total}, split by Docker {split}"
    )
    if problems:
        print("; ".join(problems))
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
