#!/usr/bin/env python3
"""Benchmark pyinit against tini, dumb-init and catatonit (stdlib only).

Run through benches/run.sh, which installs the peers and builds the static
pyinit first. Every init is measured in the same run, interleaved: each
section goes round by round, and every round measures every init once (the
order rotates from round to round), so slow drifts of a busy machine hit all
inits alike. Results go to benches/RESULTS.md (and the raw samples to
target/bench/results.json); every number and every verdict in RESULTS.md is
computed here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELPER_SRC = ROOT / "benches" / "helpers"
BIN = ROOT / "target" / "bench"
DEFAULT_PYINIT = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release" / "pyinit"
HELPERS = ["spawnloop", "sigchild", "latdrv", "orphans", "logwriter", "logcheck", "splicecopy"]

TRUE = shutil.which("true", path="/bin:/usr/bin") or "/bin/true"
SLEEP = shutil.which("sleep", path="/bin:/usr/bin") or "/bin/sleep"
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"
PID1 = [UNSHARE, "--pid", "--fork", "--mount-proc"]
TASKSET = shutil.which("taskset") or "/usr/bin/taskset"

BASELINE = "tini"  # the "ratio to tini" reference
LINE_LEN = 99  # bytes before the newline: 100-byte lines, 40 to a 4,000-byte write
# How the reader of the init's stdout is set up: as a container runtime's log
# copier (a 64 KiB pipe, as the kernel gives by default, read 32 KiB at a time).
CONSUMER_PIPE = 64 * 1024
CONSUMER_READ = 32 * 1024
# The log cases: (key, writers, lines per write() — 0: as many as fit in 4096 bytes).
LOG_CASES = [("1", 1, 0), ("8", 8, 0), ("1x100", 1, 1)]
REPORT_FD = 3  # fd on which sigchild reports its timestamps

# Targets. Sizes use decimal units (1 MB = 10^6 bytes), the stricter reading.
MB = 1_000_000
MIB = 1 << 20
GIB = 1 << 30


# --------------------------------------------------------------------------
# The inits under test


class Init:
    """How to run COMMAND under one init, plain or as PID 1."""

    def __init__(self, name, path, plain_opts=(), pid1_opts=(), package=None):
        self.name = name
        self.path = path
        self.plain_opts = list(plain_opts)
        self.pid1_opts = list(pid1_opts)
        self.package = package

    def argv(self, cmd, pid1=False, extra=()):
        if self.path is None:  # "none": the command alone
            base = list(cmd)
        else:
            opts = self.pid1_opts if pid1 else self.plain_opts
            base = [self.path, *opts, *extra, "--", *cmd]
        return PID1 + base if pid1 else base


def discover_inits(pyinit_path):
    inits = []
    if Path(pyinit_path).exists():
        inits.append(Init("pyinit", str(pyinit_path)))
    # Outside PID 1, tini warns unless it registers as subreaper (-s); pyinit
    # always registers, so -s keeps the work equal.
    peers = [
        Init("tini", "/usr/bin/tini", ["-s"], [], "tini"),
        Init("tini-static", "/usr/bin/tini-static", ["-s"], [], "tini"),
        Init("dumb-init", "/usr/bin/dumb-init", package="dumb-init"),
        Init("catatonit", "/usr/bin/catatonit", package="catatonit"),
    ]
    for p in peers:
        found = p.path if os.access(p.path, os.X_OK) else shutil.which(Path(p.path).name)
        if found:
            p.path = found
            inits.append(p)
    return inits


NONE = Init("none", None)


# --------------------------------------------------------------------------
# Small utilities


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout, **kw):
    """Runs cmd in its own session; kills the whole session on timeout."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(cmd, start_new_session=True, text=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p.pid)
        p.communicate(timeout=10)
        raise RuntimeError(f"timed out after {timeout}s: {' '.join(map(str, cmd))}")
    return p.returncode, out or "", err or ""


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, q):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def rotated(items, r):
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}x"


def fmt_us(ns):
    return "–" if ns is None else f"{ns / 1000:.1f} µs"


def fmt_ms(ns):
    return "–" if ns is None else f"{ns / 1e6:.3f} ms"


def fmt_kib(kib):
    return "–" if kib is None else f"{kib:,} KiB ({kib * 1024 / MB:.2f} MB)"


def read_int_file(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def children_of(pid):
    kids = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                kids += [int(x) for x in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return kids


def wait_for(pred, timeout, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def reap(pid, timeout):
    """wait4 with a deadline; returns (status, rusage) or (None, None)."""
    end = time.monotonic() + timeout
    while True:
        try:
            r, st, ru = os.wait4(pid, os.WNOHANG)
        except ChildProcessError:
            return None, None
        if r == pid:
            return st, ru
        if time.monotonic() > end:
            return None, None
        time.sleep(0.002)


# --------------------------------------------------------------------------
# Setup


def build_helpers():
    BIN.mkdir(parents=True, exist_ok=True)
    common = HELPER_SRC / "common.h"
    for h in HELPERS:
        src = HELPER_SRC / f"{h}.c"
        out = BIN / h
        if out.exists() and out.stat().st_mtime >= max(src.stat().st_mtime, common.stat().st_mtime):
            continue
        rc, _, err = run(["gcc", "-O2", "-Wall", "-o", str(out), str(src)], timeout=60)
        if rc != 0:
            raise SystemExit(f"cannot compile {src}:\n{err}")


def machine_info():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    osname = platform.system()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": osname,
        "mem_gib": round(mem / GIB, 1) if mem else None,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions(inits):
    out = {}
    for i in inits:
        try:
            rc, so, se = run([i.path, "--version"], timeout=10)
            v = (so.strip() or se.strip()).splitlines()[0]
        except Exception as e:  # noqa: BLE001
            v = f"unknown ({e})"
        if i.package:
            try:
                rc, so, _ = run(["dpkg-query", "-W", "-f", "${Version}", i.package], timeout=10)
                if rc == 0 and so:
                    v += f" (Debian {i.package} {so.strip()})"
            except Exception:  # noqa: BLE001
                pass
        if i.name == "pyinit":
            try:
                rc, so, _ = run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], timeout=10)
                if rc == 0:
                    v += f" (git {so.strip()})"
            except Exception:  # noqa: BLE001
                pass
        out[i.name] = v
    return out


# --------------------------------------------------------------------------
def probe_section():
    """The health-probe cost table that benches/probe.sh wrote (run.sh runs
    it first), included as it is: `pyinit health` against curl and the
    python urllib form."""
    p = ROOT / "benches" / "PROBE-RESULTS.md"
    if not p.exists():
        return ""
    body = p.read_text().split("\n", 1)[1] if "\n" in p.read_text() else ""
    return "\n## Health probe cost (from benches/probe.sh)\n" + body


# Sections. Each returns a JSON-able dict; RESULTS.md is rendered from them.


def sec_binary(inits, cfg):
    res = {}
    for i in inits:
        rc, so, _ = run(["file", "-b", "-L", i.path], timeout=10)
        desc = so.strip()
        static = ("statically linked" in desc) or ("static-pie linked" in desc)
        res[i.name] = {"bytes": os.path.getsize(i.path), "file": desc, "static": static}
    return res


def idle_memory_once(init):
    p = subprocess.Popen(
        init.argv([SLEEP, "600"], pid1=True),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ipid = wait_for(lambda: (children_of(p.pid) or [None])[0], 5)
        if not ipid or not wait_for(lambda: children_of(ipid), 5):
            raise RuntimeError(f"{init.name}: init or its child did not start")
        time.sleep(0.3)  # let it settle (threads started, pages touched)
        status = Path(f"/proc/{ipid}/status").read_text()
        rss = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
        rollup = Path(f"/proc/{ipid}/smaps_rollup").read_text()
        pss = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))
        threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
        return rss, pss, threads
    finally:
        for pid in children_of(p.pid):
            try:
                os.kill(pid, signal.SIGKILL)  # PID 1 gone: the namespace dies
            except OSError:
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_group(p.pid)
            p.wait(timeout=5)


def sec_memory(inits, cfg):
    res = {i.name: {"rss_kib": [], "pss_kib": [], "threads": None} for i in inits}
    for r in range(cfg["mem_rounds"]):
        for i in rotated(inits, r):
            rss, pss, th = idle_memory_once(i)
            res[i.name]["rss_kib"].append(rss)
            res[i.name]["pss_kib"].append(pss)
            res[i.name]["threads"] = th
    for v in res.values():
        v["rss_median_kib"] = median(v["rss_kib"])
        v["pss_median_kib"] = median(v["pss_kib"])
    return res


def spawn_batch(argv, k, timeout):
    rc, out, err = run([str(BIN / "spawnloop"), str(k), str(timeout), *argv], timeout=timeout + 10)
    samples, fails = [], 0
    for line in out.splitlines():
        if line.startswith("FAIL"):
            fails += 1
        elif line.strip():
            samples.append(int(line))
    if rc != 0:
        raise RuntimeError(f"spawnloop failed ({rc}): {err.strip()[:300]}")
    return samples, fails


def sec_start_exit(inits, cfg):
    who = [NONE] + inits
    res = {}
    for mode in ("plain", "pid1"):
        m = {i.name: {"ns": [], "fails": 0, "round_medians": []} for i in who}
        for r in range(cfg["se_rounds"]):
            for i in rotated(who, r):
                s, f = spawn_batch(i.argv([TRUE], pid1=(mode == "pid1")), cfg["se_per_round"], 60)
                m[i.name]["ns"] += s
                m[i.name]["fails"] += f
                m[i.name]["round_medians"].append(median(s))
        for v in m.values():
            v["median_ns"] = median(v["ns"])
            v["p90_ns"] = pct(v["ns"], 90)
            v["n"] = len(v["ns"])
        res[mode] = m
    return res


def lat_batch(mode, argv, k, timeout):
    cmd = [str(BIN / "latdrv"), mode, str(k), str(REPORT_FD), "1", str(timeout), "--", *argv]
    rc, out, err = run(cmd, timeout=timeout + 10)
    samples, fails, fwd = [], [], []
    for line in out.splitlines():
        if line.startswith("FAIL"):
            fails.append(line[5:])
        elif line.strip():
            f = [int(x) for x in line.split()]
            samples.append(f[0])
            if len(f) > 1:
                fwd.append(f[1])
    return samples, fails, fwd


def sec_latency(inits, cfg, mode):
    who = [NONE] + inits
    child = [str(BIN / "sigchild"), str(REPORT_FD)]
    children = {}
    if mode == "shutdown":
        # Without capture there are no pipes to drain: shows what capture costs at a stop.
        who += [Init("pyinit --no-capture", i.path, ["--no-capture"], ["--no-capture"])
                for i in inits if i.name == "pyinit"]
        # A child that logs a line (to stderr) as it stops: the init must copy it out first.
        for i in inits:
            if i.name in ("pyinit", BASELINE):
                talk = Init(f"{i.name}, child logs a line as it stops", i.path, i.plain_opts, i.pid1_opts)
                children[talk.name] = child + ["stopping: bye"]
                who.append(talk)
    rounds, per = (cfg["sig_rounds"], cfg["sig_per_round"]) if mode == "sig" else (cfg["sd_rounds"], cfg["sd_per_round"])
    res = {i.name: {"ns": [], "fails": [], "round_medians": [], "to_child_ns": []} for i in who}
    for r in range(rounds):
        for i in rotated(who, r):
            s, f, fwd = lat_batch(mode, i.argv(children.get(i.name, child), pid1=True), per, 120)
            res[i.name]["ns"] += s
            res[i.name]["fails"] += f
            res[i.name]["to_child_ns"] += fwd
            res[i.name]["round_medians"].append(median(s))
    for v in res.values():
        v["to_child_median_ns"] = median(v["to_child_ns"])
        v["median_ns"] = median(v["ns"])
        v["p99_ns"] = pct(v["ns"], 99)
        v["n"] = len(v["ns"])
        v["fails"] = v["fails"][:5] + ([f"... {len(v['fails']) - 5} more"] if len(v["fails"]) > 5 else [])
    return res


def sec_reaping(inits, cfg):
    res = {i.name: {"rate": [], "lag_ns": [], "total_ns": [], "cpu_per_orphan_ns": [], "throttled": 0, "errors": []}
           for i in inits}
    n = cfg["reap_n"]
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        for r in range(cfg["reap_rounds"]):
            for i in rotated(inits, r):
                out = Path(tmp) / f"{i.name}-{r}"
                cmd = i.argv([str(BIN / "orphans"), str(n), str(cfg["reap_window"]), str(out)], pid1=True)
                try:
                    rc, _, err = run(cmd, timeout=150, stdout=subprocess.DEVNULL)
                    fields = out.read_text().split()
                    cnt, created, reaped, thr, cpu = (int(x) for x in fields[:5])
                except Exception as e:  # noqa: BLE001
                    res[i.name]["errors"].append(str(e)[:200])
                    continue
                res[i.name]["rate"].append(cnt / (reaped / 1e9))
                res[i.name]["lag_ns"].append(reaped - created)
                res[i.name]["total_ns"].append(reaped)
                res[i.name]["throttled"] += thr
                if cpu > 0:
                    res[i.name]["cpu_per_orphan_ns"].append(cpu / cnt)
    for v in res.values():
        v["rate_median"] = median(v["rate"])
        v["lag_median_ns"] = median(v["lag_ns"])
        v["cpu_per_orphan_median_ns"] = median(v["cpu_per_orphan_ns"])
    return res


class LogConfig:
    def __init__(self, label, init, extra=(), fmt="raw", capture=True, copier=None):
        self.label = label
        self.init = init
        self.extra = list(extra)
        self.fmt = fmt
        self.capture = capture  # does this init copy the output itself?
        self.copier = copier  # reference: writer → pipe → COPIER → pipe → reader


def log_configs(inits):
    by = {i.name: i for i in inits}
    cfgs = [LogConfig("no init (writer → pipe → reader)", NONE, capture=False)]
    if "pyinit" in by:
        p = by["pyinit"]
        cfgs += [
            LogConfig("pyinit (capture, raw)", p),
            LogConfig("pyinit --log-format json", p, ["--log-format", "json"], fmt="json"),
            LogConfig("pyinit --no-capture", p, ["--no-capture"], capture=False),
        ]
    for i in inits:
        if i.name != "pyinit":
            cfgs.append(LogConfig(f"{i.name} (pass-through)", i, capture=False))
    # What copying costs on this machine, whoever does it: the floor for a capturing init.
    cfgs.append(LogConfig("reference: read/write copier (C)", NONE, copier=[str(BIN / "splicecopy"), "rw"]))
    cfgs.append(LogConfig("reference: splice copier (C)", NONE, copier=[str(BIN / "splicecopy"), "splice"]))
    return cfgs


def consumer_pipe():
    """The pipe the init writes into and the checker reads: 64 KiB, as a runtime's."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CONSUMER_PIPE)
    except (OSError, AttributeError):
        pass  # the default is 64 KiB anyway
    return r, w


def pinned(cpu, argv):
    """argv run on CPU `cpu` only (util-linux taskset), or as it is for None."""
    return list(argv) if cpu is None else [TASKSET, "-c", str(cpu), *argv]


def log_run(lc, writers, lines_per_writer, tmp, lines_per_write=0, place=(None, None, None)):
    """One throughput run: INIT -- logwriter | logcheck. `place`: the CPU of
    the writer, the init (or copier) and the reader; None lets the scheduler choose."""
    on_w, on_i, on_r = place
    ru_file = Path(tmp) / "writer-rusage"
    ru_file.unlink(missing_ok=True)
    writer = [str(BIN / "logwriter"), str(writers), str(lines_per_writer), str(LINE_LEN), "0", "0", str(ru_file),
              str(lines_per_write)]
    writer = pinned(on_w, writer)
    argv = lc.init.argv(writer, extra=lc.extra)
    if lc.init.path is not None:
        argv = pinned(on_i, argv)
    r, w = consumer_pipe()
    errf = open(Path(tmp) / "stderr", "w+")
    feeder = None
    try:
        checker = subprocess.Popen(
            pinned(on_r, [str(BIN / "logcheck"), lc.fmt, str(writers), str(lines_per_writer), str(LINE_LEN), "0",
                          "0", str(CONSUMER_READ)]),
            stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        t0 = time.monotonic_ns()
        if lc.copier:
            # writer → pipe → copier → pipe → checker; "the init" measured is the copier.
            fr, fw = os.pipe()
            try:
                proc = subprocess.Popen(pinned(on_i, lc.copier), stdin=fr, stdout=w, stderr=errf,
                                        start_new_session=True)
                feeder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fw, stderr=errf,
                                          start_new_session=True)
            finally:
                os.close(fr)
                os.close(fw)
        else:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=errf, start_new_session=True)
    finally:
        os.close(r)
        os.close(w)
    st, ru = reap(proc.pid, 300)
    if feeder is not None:
        try:
            feeder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_group(feeder.pid)
            feeder.wait(timeout=10)
    if st is None:
        kill_group(proc.pid)
        kill_group(checker.pid)
        proc.wait(timeout=10)
        checker.wait(timeout=10)
        raise RuntimeError(f"{lc.label}: timed out")
    proc.returncode = os.waitstatus_to_exitcode(st)
    try:
        out, cerr = checker.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_group(checker.pid)
        checker.communicate(timeout=10)
        raise RuntimeError(f"{lc.label}: checker timed out")
    m = dict(kv.split("=", 1) for kv in out.strip().split(" ", 8))
    elapsed = int(m["t_end_ns"]) - t0
    payload = writers * lines_per_writer * (LINE_LEN + 1)
    writer_us = read_int_file(ru_file)
    cpu = None
    if lc.copier:
        cpu = ru.ru_utime + ru.ru_stime  # the copier has no children
    elif lc.init.path is not None and writer_us is not None:
        total_us = (ru.ru_utime + ru.ru_stime) * 1e6
        cpu = max(0.0, (total_us - writer_us) / 1e6)
    errf.seek(0)
    stderr_text = errf.read()[:300]
    errf.close()
    # Who burns the machine's CPUs: writer, init (or copier), reader, per GiB;
    # and how busy the CPUs were overall (1.0 = every CPU all the time).
    gib = payload / GIB
    writer_s = None if writer_us is None else writer_us / 1e6
    reader_s = int(m["cpu_us"]) / 1e6
    parts = [x for x in (writer_s, cpu, reader_s) if x is not None]
    ncpu = os.cpu_count() or 1
    busy = sum(parts) / (elapsed / 1e9) / ncpu
    return {
        # The throughput if every CPU were busy with this pipeline all the
        # time: payload / (CPU seconds it took / CPUs). No scheduling can beat it.
        "ceiling_mib_s": payload / MIB / (sum(parts) / ncpu) if sum(parts) > 0 else None,
        "writer_s_per_gib": None if writer_s is None else writer_s / gib,
        "reader_s_per_gib": reader_s / gib,
        "cpu_busy": busy,
        "elapsed_ns": elapsed,
        "mib_s": payload / MIB / (elapsed / 1e9),
        "lines_s": writers * lines_per_writer / (elapsed / 1e9),
        "out_mib_s": int(m["bytes"]) / MIB / (elapsed / 1e9),
        "init_cpu_s": cpu,
        "cpu_s_per_gib": None if cpu is None else cpu / (payload / GIB),
        "records": int(m["records"]),
        "good": int(m["good"]),
        "malformed": int(m["malformed"]),
        "lost": int(m["lost"]),
        "dups": int(m["dups"]),
        "first_bad": m.get("first_bad", "-"),
        "exit": proc.returncode,
        "stderr": stderr_text,
    }


def summarize_log_runs(runs):
    def med(key):
        xs = [r[key] for r in runs if r.get(key) is not None]
        return median(xs)

    return {
        "runs": len(runs),
        "run_mib_s": [r["mib_s"] for r in runs],
        "run_round": [r.get("round") for r in runs],
        "run_cpu_s_per_gib": [r["cpu_s_per_gib"] for r in runs],
        "mib_s": med("mib_s"),
        "lines_s": med("lines_s"),
        "out_mib_s": med("out_mib_s"),
        "cpu_s_per_gib": med("cpu_s_per_gib"),
        "writer_s_per_gib": med("writer_s_per_gib"),
        "reader_s_per_gib": med("reader_s_per_gib"),
        "cpu_busy": med("cpu_busy"),
        "ceiling_mib_s": med("ceiling_mib_s"),
        "records": sum(r["records"] for r in runs),
        "malformed": sum(r["malformed"] for r in runs),
        "lost": sum(r["lost"] for r in runs),
        "dups": sum(r["dups"] for r in runs),
        "first_bad": next((r["first_bad"] for r in runs if r["first_bad"] != "-"), "-"),
        "bad_exit": [r["exit"] for r in runs if r["exit"] != 0],
        "stderr": next((r["stderr"] for r in runs if r["stderr"]), ""),
    }


def sec_logs(inits, cfg):
    res = {}
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        for key, writers, per_write in LOG_CASES:
            cfgs = log_configs(inits)
            total = cfg["log_bytes"]
            if per_write == 1:
                # One line per write(): a print()-heavy app. Fewer bytes (it is
                # slower) and only the rows that matter for it.
                total //= 4
                keep = ("no init", "pyinit (capture", "pyinit --no-capture", "tini (", "reference: read/write")
                cfgs = [lc for lc in cfgs if lc.label.startswith(keep)]
            per = max(1, total // (LINE_LEN + 1) // writers)
            runs = {lc.label: [] for lc in cfgs}
            errors = {lc.label: [] for lc in cfgs}
            for r in range(cfg["log_rounds"]):
                for lc in rotated(cfgs, r):
                    try:
                        runs[lc.label].append({**log_run(lc, writers, per, tmp, per_write), "round": r})
                    except Exception as e:  # noqa: BLE001
                        errors[lc.label].append(str(e)[:200])
            res[key] = {
                lc.label: {**summarize_log_runs(runs[lc.label]), "errors": errors[lc.label], "capture": lc.capture,
                           "init": lc.init.name, "fmt": lc.fmt, "extra": lc.extra}
                for lc in cfgs
            }
    return res


# Where the three processes of a capture run: (label, writer CPU, init CPU, reader CPU).
PLACEMENTS = [
    ("scheduler's choice", None, None, None),
    ("init shares the reader's CPU", 0, 1, 1),
    ("init shares the writer's CPU", 0, 0, 1),
    ("init alone, writer and reader share a CPU", 0, 1, 0),
    ("all on one CPU", 0, 0, 0),
]


def placement_ceiling(cpus, row):
    """MiB/s the busiest CPU allows when writer, init and reader are pinned to `cpus`."""
    costs = (row.get("writer_s_per_gib"), row.get("cpu_s_per_gib"), row.get("reader_s_per_gib"))
    if None in cpus or None in costs:
        return None
    load = {}
    for cpu, c in zip(cpus, costs):
        load[cpu] = load.get(cpu, 0.0) + c
    worst = max(load.values())
    return None if worst <= 0 else GIB / MIB / worst


def sec_placement(inits, cfg):
    """1 writer, 4,000 B writes, with each process pinned to a CPU: how much the
    scheduler's placement decides (the pipe row pins writer and reader alike)."""
    if (os.cpu_count() or 1) < 2 or not os.access(TASKSET, os.X_OK):
        return {"status": "needs 2 CPUs and taskset"}
    by = {i.name: i for i in inits}
    rows = [LogConfig("no init (writer → pipe → reader)", NONE, capture=False)]
    if "pyinit" in by:
        rows.append(LogConfig("pyinit (capture, raw)", by["pyinit"]))
    rows.append(LogConfig("reference: read/write copier (C)", NONE, copier=[str(BIN / "splicecopy"), "rw"]))
    per = max(1, cfg["log_bytes"] // (LINE_LEN + 1))
    res = {p[0]: {lc.label: [] for lc in rows} for p in PLACEMENTS}
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        for r in range(cfg["place_rounds"]):
            for place in rotated(PLACEMENTS, r):
                for lc in rotated(rows, r):
                    try:
                        res[place[0]][lc.label].append({**log_run(lc, 1, per, tmp, 0, place[1:]), "round": r})
                    except Exception as e:  # noqa: BLE001
                        log(f"placement {place[0]} {lc.label}: {e}")
    return {"status": "ok", "places": {k: {lab: summarize_log_runs(v) for lab, v in rows_.items()}
                                       for k, rows_ in res.items()},
            "cpus": {p[0]: p[1:] for p in PLACEMENTS}}


def sec_procfile(inits, cfg):
    """pyinit --procfile: 8 processes writing concurrently; lights up once implemented."""
    by = {i.name: i for i in inits}
    if "pyinit" not in by:
        return {"status": "pyinit missing"}
    pyinit = by["pyinit"].path
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        probe = Path(tmp) / "Procfile.probe"
        probe.write_text(f"probe: {TRUE}\n")
        try:
            rc, so, se = run([pyinit, "--procfile", str(probe)], timeout=10)
        except Exception as e:  # noqa: BLE001
            return {"status": "not implemented", "detail": str(e)[:200]}
        if rc != 0:
            return {"status": "not implemented", "detail": f"`pyinit --procfile` exited {rc}: {(se or so).strip()[:200]}"}
        writers = 8
        per = max(1, cfg["log_bytes"] // (LINE_LEN + 1) // writers)
        procfile = Path(tmp) / "Procfile"
        procfile.write_text("".join(
            f"w{k}: {BIN / 'logwriter'} 1 {per} {LINE_LEN} {k} 1 {Path(tmp) / f'ru-{k}'}\n" for k in range(writers)))
        runs, errors = [], []
        for _ in range(cfg["log_rounds"]):
            try:
                runs.append(procfile_run(pyinit, procfile, writers, per, tmp))
            except Exception as e:  # noqa: BLE001
                errors.append(str(e)[:200])
        if not runs:
            return {"status": "error", "detail": "; ".join(errors)}
        return {"status": "ok", **summarize_log_runs(runs), "errors": errors}


def procfile_run(pyinit, procfile, writers, per, tmp):
    r, w = consumer_pipe()
    try:
        checker = subprocess.Popen(
            [str(BIN / "logcheck"), "prefix", str(writers), str(per), str(LINE_LEN), "5000", "1"],
            stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([pyinit, "--grace", "2s", "--procfile", str(procfile)], stdin=subprocess.DEVNULL,
                                stdout=w, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(r)
        os.close(w)
    try:
        out, _ = checker.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        kill_group(checker.pid)
        checker.communicate(timeout=10)
        out = ""
    try:
        os.kill(proc.pid, signal.SIGTERM)  # the writers linger until stopped
    except OSError:
        pass
    st, ru = reap(proc.pid, 10)
    if st is None:
        kill_group(proc.pid)
        proc.wait(timeout=10)
        raise RuntimeError("pyinit --procfile did not stop")
    proc.returncode = os.waitstatus_to_exitcode(st)
    if not out:
        raise RuntimeError("checker timed out")
    m = dict(kv.split("=", 1) for kv in out.strip().split(" ", 8))
    elapsed = int(m["t_end_ns"]) - t0
    payload = writers * per * (LINE_LEN + 1)
    # pyinit's own CPU: its wait4 rusage minus what each writer reported before lingering.
    writer_us = [read_int_file(Path(tmp) / f"ru-{k}") for k in range(writers)]
    cpu = None
    if all(x is not None for x in writer_us):
        cpu = max(0.0, ru.ru_utime + ru.ru_stime - sum(writer_us) / 1e6)
    for k in range(writers):
        (Path(tmp) / f"ru-{k}").unlink(missing_ok=True)
    return {
        "elapsed_ns": elapsed, "mib_s": payload / MIB / (elapsed / 1e9),
        "lines_s": writers * per / (elapsed / 1e9), "out_mib_s": int(m["bytes"]) / MIB / (elapsed / 1e9),
        "init_cpu_s": cpu, "cpu_s_per_gib": None if cpu is None else cpu / (payload / GIB),
        "records": int(m["records"]), "good": int(m["good"]), "malformed": int(m["malformed"]),
        "lost": int(m["lost"]), "dups": int(m["dups"]), "first_bad": m.get("first_bad", "-"),
        "exit": 0, "stderr": "",
    }


def sec_hyperfine(inits, cfg):
    """Cross-check of plain start+exit with hyperfine (not interleaved)."""
    hf = shutil.which("hyperfine")
    if not hf:
        return {"status": "hyperfine not installed"}
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        out = Path(tmp) / "hf.json"
        cmds = []
        for i in [NONE] + inits:
            cmds += ["-n", i.name, " ".join(i.argv([TRUE]))]
        rc, so, se = run([hf, "-N", "--warmup", "20", "--runs", str(cfg["hf_runs"]), "--style", "none",
                          "--export-json", str(out), *cmds], timeout=300)
        if rc != 0:
            return {"status": f"hyperfine failed: {se.strip()[:200]}"}
        data = json.loads(out.read_text())
    return {"status": "ok", "median_s": {r["command"]: r["median"] for r in data["results"]}}


# --------------------------------------------------------------------------
# Targets and the report


def run_ratios(a, b):
    """Throughput ratios a/b of the runs made in the same round (interleaved)."""
    bs = dict(zip(b.get("run_round", []), b.get("run_mib_s", [])))
    return [x / bs[r] for r, x in zip(a.get("run_round", []), a.get("run_mib_s", [])) if bs.get(r)]


def fmt_round_ratios(rs):
    if not rs:
        return "–"
    return " ".join(f"{x:.2f}" for x in rs) + f" (min {min(rs):.2f}, max {max(rs):.2f})"


def targets(R):
    """[(target, measured, goal, verdict)] — every verdict computed here."""
    out = []

    def add(name, measured, goal, ok, spread="–"):
        out.append((name, measured, goal, "n/a" if ok is None else ("met" if ok else "**MISSED**"), spread))

    def spread(a, b):
        """min–max of the per-round ratios a[r] / b[r] (rounds are interleaved)."""
        rs = [x / y for x, y in zip(a or [], b or []) if x is not None and y]
        return "–" if len(rs) < 2 else fmt_round_ratios(rs)

    se = R.get("start_exit", {}).get("pid1", {})
    r = ratio(se.get("pyinit", {}).get("median_ns"), se.get(BASELINE, {}).get("median_ns"))
    add("start+exit as PID 1 (median)", fmt_ratio(r) + " of tini", "≤ 1.05x", None if r is None else r <= 1.05,
        spread(se.get("pyinit", {}).get("round_medians"), se.get(BASELINE, {}).get("round_medians")))

    sg = R.get("signal", {})
    r = ratio(sg.get("pyinit", {}).get("median_ns"), sg.get(BASELINE, {}).get("median_ns"))
    add("signal forwarding latency (median)", fmt_ratio(r) + " of tini", "≤ 1.0x", None if r is None else r <= 1.0,
        spread(sg.get("pyinit", {}).get("round_medians"), sg.get(BASELINE, {}).get("round_medians")))

    sd = R.get("shutdown", {})
    r = ratio(sd.get("pyinit", {}).get("median_ns"), sd.get(BASELINE, {}).get("median_ns"))
    add("shutdown latency (median)", fmt_ratio(r) + " of tini", "≤ 1.1x", None if r is None else r <= 1.1,
        spread(sd.get("pyinit", {}).get("round_medians"), sd.get(BASELINE, {}).get("round_medians")))

    talk = sd.get("pyinit, child logs a line as it stops", {})
    talk_tini = sd.get(f"{BASELINE}, child logs a line as it stops", {})
    if talk and talk_tini:
        r = ratio(talk.get("median_ns"), talk_tini.get("median_ns"))
        out.append(("(context, not a target) shutdown latency when the child logs a line as it stops (median)",
                    fmt_ratio(r) + " of tini doing the same", "–", "context",
                    spread(talk.get("round_medians"), talk_tini.get("round_medians"))))
    nc = sd.get("pyinit --no-capture", {})
    if nc:
        r = ratio(nc.get("median_ns"), sd.get(BASELINE, {}).get("median_ns"))
        out.append(("(context, not a target) shutdown latency, pyinit --no-capture (median)",
                    fmt_ratio(r) + " of tini", "–", "context",
                    spread(nc.get("round_medians"), sd.get(BASELINE, {}).get("round_medians"))))

    rp = R.get("reaping", {})
    r = ratio(rp.get("pyinit", {}).get("rate_median"), rp.get(BASELINE, {}).get("rate_median"))
    add("zombie reaping rate as PID 1 (median)", fmt_ratio(r) + " of tini", "≥ 1.0x", None if r is None else r >= 1.0,
        spread(rp.get("pyinit", {}).get("rate"), rp.get(BASELINE, {}).get("rate")))

    mem = R.get("memory", {}).get("pyinit", {})
    rss = mem.get("rss_median_kib")
    add("idle VmRSS as PID 1 (median)", fmt_kib(rss), "≤ 2 MB", None if rss is None else rss * 1024 <= 2 * MB)

    b = R.get("binary", {}).get("pyinit")
    if b:
        add("binary size, static", f"{b['bytes']:,} bytes ({b['bytes'] / MB:.2f} MB), "
            + ("static" if b["static"] else "NOT static"), "≤ 2.0 MB, static",
            b["bytes"] <= 2.0 * MB and b["static"])
    else:
        add("binary size, static", "–", "≤ 2.0 MB, static", None)

    logs = R.get("logs", {})
    pipe_label = "no init (writer → pipe → reader)"
    ref_label = "reference: read/write copier (C)"
    for key, name, goal in (("1", "capture throughput, 1 writer, 4,000 B writes", 0.8),
                            ("8", "capture throughput, 8 writers sharing one pipe", 0.7)):
        rows = logs.get(key, {})
        cap, pipe = rows.get("pyinit (capture, raw)", {}), rows.get(pipe_label, {})
        r = ratio(cap.get("mib_s"), pipe.get("mib_s"))
        add(name, fmt_ratio(r) + " of the no-init pipe", f"≥ {goal}x", None if r is None else r >= goal,
            fmt_round_ratios(run_ratios(cap, pipe)))
        ceil = ratio(cap.get("ceiling_mib_s"), pipe.get("mib_s"))
        if ceil is not None:
            busy = cap.get("cpu_busy")
            out.append((f"(context, not a target) {name}: what the CPUs allow",
                        f"CPU ceiling {fmt_ratio(ceil)} of the pipe (writer + pyinit + reader CPU time on "
                        f"{os.cpu_count()} CPUs); CPUs {'–' if busy is None else f'{busy * 100:.0f} %'} busy",
                        "–", "context", "–"))
    for key, name, goal in (("1", "pyinit CPU per GiB captured, 1 writer, 4,000 B writes", 0.3),
                            ("1x100", "pyinit CPU per GiB captured, 1 writer, 100 B writes", 2.0)):
        cap = logs.get(key, {}).get("pyinit (capture, raw)", {})
        cpu = cap.get("cpu_s_per_gib")
        runs = [x for x in cap.get("run_cpu_s_per_gib", []) if x is not None]
        add(name, "–" if cpu is None else f"{cpu:.3f} s/GiB", f"≤ {goal} s/GiB", None if cpu is None else cpu <= goal,
            "–" if len(runs) < 2 else " ".join(f"{x:.2f}" for x in runs) + " s/GiB per run")
    for key, what in (("1", "1 writer"), ("8", "8 writers"), ("1x100", "1 writer, 100 B writes")):
        rows = logs.get(key, {})
        ref, pipe, cap = rows.get(ref_label, {}), rows.get(pipe_label, {}), rows.get("pyinit (capture, raw)", {})
        if ref.get("mib_s") is None:
            continue
        c1 = ref.get("cpu_s_per_gib")
        out.append((f"(context, not a target) a minimal C read/write copier in pyinit's place, {what}",
                    f"{fmt_ratio(ratio(ref.get('mib_s'), pipe.get('mib_s')))} of the pipe, "
                    f"{'–' if c1 is None else f'{c1:.3f}'} s/GiB; pyinit = "
                    f"{fmt_ratio(ratio(cap.get('mib_s'), ref.get('mib_s')))} its throughput, "
                    f"{fmt_ratio(ratio(cap.get('cpu_s_per_gib'), c1))} its CPU",
                    "–", "context", fmt_round_ratios(run_ratios(ref, pipe))))
    bad, checked = 0, 0
    any_pyinit = False
    for w in logs.values():
        for label, v in w.items():
            if v.get("init") == "pyinit":
                any_pyinit = True
                bad += v["malformed"] + v["lost"] + v["dups"]
                checked += v["records"]
    pf = R.get("procfile", {})
    if pf.get("status") == "ok":
        bad += pf["malformed"] + pf["lost"] + pf["dups"]
        checked += pf["records"]
    for rows in R.get("placement", {}).get("places", {}).values():
        v = rows.get("pyinit (capture, raw)")
        if v:
            bad += v["malformed"] + v["lost"] + v["dups"]
            checked += v["records"]
    add("malformed/lost lines through pyinit (all runs)", f"{bad:,} of {checked:,} records checked",
        "0", None if not any_pyinit else bad == 0)
    return out


def render(R, cfg, argv_text):
    L = []
    w = L.append
    m = R["machine"]
    w("# pyinit benchmark results")
    w("")
    w(f"Generated by `{argv_text}` on {R['date']} — do not edit by hand; rerun the command.")
    w("")
    w(f"- Mode: **{'quick' if cfg['quick'] else 'full'}** "
      f"({cfg['elapsed_s']:.0f} s). Inits measured in the same run, interleaved round by round "
      f"(order rotated each round). Ratios are to `{BASELINE}` (Debian's dynamically linked tini) "
      f"measured in the same run.")
    w(f"- Machine: {m['nproc']} CPUs, {m['cpu']}, {m['mem_gib']} GiB RAM, kernel {m['kernel']}, {m['os']}.")
    w(f"- Load average at start {' '.join(m['loadavg_start'])}, at end {' '.join(m['loadavg_end'])} "
      "(other work on the machine makes absolute numbers noisy; compare ratios).")
    w("- Versions:")
    for k, v in R["versions"].items():
        w(f"  - {k}: {v}")
    w("")

    w("## Targets")
    w("")
    w("| target | measured (pyinit) | goal | verdict | per-round ratios |")
    w("| --- | --- | --- | --- | --- |")
    for t in targets(R):
        w(f"| {t[0]} | {t[1]} | {t[2]} | {t[3]} | {t[4]} |")
    w("")
    w("1 MB = 10^6 bytes. Latency ratios compare medians over all samples; reaping compares rates (higher is "
      "better). Per-round ratios: the same ratio within each interleaved round, min–max — when that range "
      "straddles the goal, the verdict is within this machine's noise.")
    w("")

    if "errors" in R and R["errors"]:
        w("## Errors")
        w("")
        for k, v in R["errors"].items():
            w(f"- {k}: `{v}`")
        w("")

    names = [i for i in R.get("inits", [])]

    def rat(a, key, base_row):
        return fmt_ratio(ratio(a.get(key), base_row.get(key))) if base_row else "–"

    if "binary" in R:
        w("## Binary size and linkage")
        w("")
        w("| init | bytes | MB | `file` |")
        w("| --- | ---: | ---: | --- |")
        for n in names:
            b = R["binary"][n]
            w(f"| {n} | {b['bytes']:,} | {b['bytes'] / MB:.2f} | {b['file'][:120]} |")
        w("")
        w("The dynamically linked inits also map libc (about 2 MB, shared with other processes).")
        w("")

    if "memory" in R:
        mm = R["memory"]
        base = mm.get(BASELINE)
        w("## Idle memory as PID 1 (running `sleep`)")
        w("")
        w(f"`unshare --pid --fork --mount-proc INIT -- sleep 600`, read after 0.3 s; "
          f"{len(mm[names[0]]['rss_kib'])} samples each.")
        w("")
        w("| init | VmRSS (median) | Pss (median) | threads | VmRSS ratio |")
        w("| --- | ---: | ---: | ---: | ---: |")
        for n in names:
            v = mm[n]
            w(f"| {n} | {v['rss_median_kib']:,} KiB | {v['pss_median_kib']:,} KiB | {v['threads']} | "
              f"{rat(v, 'rss_median_kib', base)} |")
        w("")

    if "start_exit" in R:
        se = R["start_exit"]
        w("## Start + exit overhead: `INIT -- /bin/true`")
        w("")
        w("posix_spawn to waitpid, measured by a C loop; `none` is `/bin/true` alone. "
          "As PID 1: `unshare --pid --fork --mount-proc INIT -- /bin/true` (the namespace and the proc mount "
          "are part of every row).")
        w("")
        w("| init | plain median | plain p90 | ratio | as PID 1 median | PID 1 p90 | ratio | samples | failures |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in ["none"] + names:
            a, b = se["plain"][n], se["pid1"][n]
            w(f"| {n} | {fmt_us(a['median_ns'])} | {fmt_us(a['p90_ns'])} | {rat(a, 'median_ns', se['plain'].get(BASELINE))} "
              f"| {fmt_us(b['median_ns'])} | {fmt_us(b['p90_ns'])} | {rat(b, 'median_ns', se['pid1'].get(BASELINE))} "
              f"| {a['n']} + {b['n']} | {a['fails'] + b['fails']} |")
        w("")
        hf = R.get("hyperfine")
        if hf and hf.get("status") == "ok":
            w("Cross-check with hyperfine (`-N`, plain, one init after the other — not interleaved): "
              + ", ".join(f"{k} {v * 1e6:.0f} µs" for k, v in hf["median_s"].items()) + ".")
            w("")

    for key, title, what in (
        ("signal", "Signal forwarding latency (SIGUSR1, init as PID 1)",
         "From just before `kill(init, SIGUSR1)` to the child's handler reading CLOCK_MONOTONIC "
         "(a C child; 1–3 ms idle between signals). `none`: the child itself is PID 1 and gets the signal directly."),
        ("shutdown", "Shutdown latency (SIGTERM, init as PID 1)",
         "From just before `kill(init, SIGTERM)` until a pidfd of the init reports it exited; the child exits "
         "at once on TERM (its handler records the time first, which splits the total in two; the rest is the "
         "difference of the medians). Includes the kernel tearing down the PID namespace. `none`: the child is "
         "PID 1."),
    ):
        if key not in R:
            continue
        d = R[key]
        base = d.get(BASELINE)
        w(f"## {title}")
        w("")
        w(what)
        w("")
        split = key == "shutdown"
        w("| init | median | p99 | median ratio | p99 ratio |"
          + (" TERM reaches the child (median) | rest: child exit → init gone |" if split else "")
          + " samples | failures |")
        w("| --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if split else "") + " ---: | ---: |")
        for n in d:
            v = d[n]
            extra = ""
            if split:
                tc = v.get("to_child_median_ns")
                rest = None if tc is None or v["median_ns"] is None else v["median_ns"] - tc
                extra = f" {fmt_us(tc)} | {fmt_us(rest)} |"
            w(f"| {n} | {fmt_us(v['median_ns'])} | {fmt_us(v['p99_ns'])} | {rat(v, 'median_ns', base)} | "
              f"{rat(v, 'p99_ns', base)} |{extra} {v['n']} | "
              f"{len(v['fails'])}{' ' + '; '.join(v['fails']) if v['fails'] else ''} |")
        w("")

    if "reaping" in R:
        d = R["reaping"]
        base = d.get(BASELINE)
        w("## Zombie reaping as PID 1")
        w("")
        w(f"A C helper (the init's child) makes {cfg['reap_n']:,} double-forked orphans as fast as it can "
          f"(at most {cfg['reap_window']:,} unreaped at a time) and waits until every one is reaped "
          "(`kill(pid, 0)` fails with ESRCH, not merely a zombie). Rate = orphans / (burst start → last reaped); "
          "lag = last reaped − end of the burst. Creating the orphans (two forks each) dominates the time, so the "
          "rate is close to the fork rate for every init; init CPU per orphan (all threads of PID 1, from "
          "/proc/1/task/*/schedstat) shows the init's own cost.")
        w("")
        w("| init | rate (median) | ratio | lag after burst (median) | init CPU per orphan | rounds | throttled waits | errors |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for n in names:
            v = d[n]
            rate = "–" if v["rate_median"] is None else f"{v['rate_median']:,.0f} /s"
            cpu = v.get("cpu_per_orphan_median_ns")
            w(f"| {n} | {rate} | {rat(v, 'rate_median', base)} | {fmt_ms(v['lag_median_ns'])} | "
              f"{'–' if cpu is None else f'{cpu / 1000:.1f} µs'} | {len(v['rate'])} | "
              f"{v['throttled']} | {'; '.join(v['errors'][:2]) or '–'} |")
        w("")

    if "logs" in R:
        w("## Log throughput")
        w("")
        w(f"`INIT -- logwriter N` → pipe → `logcheck`: {cfg['log_bytes'] / MIB:.0f} MiB of {LINE_LEN + 1}-byte lines "
          f"per run ({cfg['log_bytes'] / 4 / MIB:.0f} MiB with 100 B writes), {cfg['log_rounds']} run(s) per row, "
          "interleaved round by round. Each write() carries whole lines: "
          f"{4096 // (LINE_LEN + 1)} lines ({4096 // (LINE_LEN + 1) * (LINE_LEN + 1):,} bytes), as Python's logging "
          "writes a record, or one line (100 B writes: a print()-heavy app); with 8 writers all share one stdout "
          f"pipe. The reader is what a container runtime's log copier is: a {CONSUMER_PIPE // 1024} KiB pipe, "
          f"plain blocking `read`s of {CONSUMER_READ // 1024} KiB, and it checks every line "
          "(writer id, sequence number, length, content): malformed = split, merged or corrupted; lost = never "
          "seen; dup = seen twice or out of order. MiB/s and lines/s count the writers' payload; out MiB/s "
          "what the reader got. CPU = the init's own user+system time (wait4 rusage minus the writers'), per GiB "
          "of payload. Only pyinit copies the output; the other inits pass the pipe through. The two reference rows "
          "put a minimal C copier between writer and reader (no init): `read`/`write` with 64 KiB (the copies "
          "a capturing init cannot avoid with read and write) and `splice` (no copy through user space) — the "
          "floor for any capturing init on this machine. Writer / reader CPU: what `logwriter` and `logcheck` "
          "spent per GiB in the same runs. CPUs busy: (writer + init + reader CPU time) / elapsed / CPUs. "
          "CPU ceiling: the throughput this pipeline would reach if it kept every CPU busy all the time "
          "(payload / (its CPU time / CPUs)), as a ratio to the no-init pipe: with three processes on 2 CPUs "
          "a copier cannot beat it, however it is scheduled.")
        w("")
        titles = {"1": "1 writer, 4,000 B writes", "8": "8 writers sharing one pipe, 4,000 B writes",
                  "1x100": "1 writer, 100 B writes (one line per write)"}
        for writers, rows in R["logs"].items():
            pipe = rows.get("no init (writer → pipe → reader)")
            w(f"### {titles.get(writers, writers)}")
            w("")
            w("| configuration | MiB/s | lines/s | ratio to no-init pipe | per-round ratios | out MiB/s | init CPU s/GiB "
              "| writer / reader CPU s/GiB | CPUs busy | CPU ceiling | records checked | malformed | lost | dup |")
            w("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for label, v in rows.items():
                def f(x, spec):
                    return "–" if x is None else format(x, spec)
                rr = " ".join(f"{x:.2f}" for x in run_ratios(v, pipe or {})) or "–"
                w(f"| {label} | {f(v['mib_s'], ',.0f')} | {f(v['lines_s'], ',.0f')} | {rat(v, 'mib_s', pipe)} | "
                  f"{rr} | {f(v['out_mib_s'], ',.0f')} | {f(v['cpu_s_per_gib'], '.3f')} | "
                  f"{f(v.get('writer_s_per_gib'), '.2f')} / {f(v.get('reader_s_per_gib'), '.2f')} | "
                  f"{'–' if v.get('cpu_busy') is None else format(v['cpu_busy'] * 100, '.0f') + ' %'} | "
                  f"{rat(v, 'ceiling_mib_s', {'ceiling_mib_s': (pipe or {}).get('mib_s')})} | {v['records']:,} | "
                  f"{v['malformed']} | {v['lost']} | {v['dups']} |")
            notes = [(label, v) for label, v in rows.items() if v["errors"] or v["bad_exit"] or v["first_bad"] != "-"]
            for label, v in notes:
                w(f"- {label}: errors {v['errors'][:2]}, non-zero exits {v['bad_exit'][:3]}, "
                  f"first bad record `{v['first_bad'][:80]}`, stderr `{v['stderr'][:120]}`")
            w("")

    pl = R.get("placement", {})
    if pl.get("status") == "ok":
        w("### Where the scheduler puts the processes (1 writer, 4,000 B writes)")
        w("")
        w("The same runs with each process pinned to a CPU (`taskset`): writer, init (or C copier) and reader. "
          "The pipe row has no third process, so it only depends on where writer and reader are. On this 2-CPU "
          "machine the scheduler picks one of these placements per run, which is why unpinned ratios jump from "
          "run to run.")
        w("")
        w("Ceiling: for a pinned placement, the most the three processes could move if the busiest CPU "
          "never idled: 1 / (the largest sum of writer, pyinit and reader CPU seconds per GiB on one CPU), "
          "as a ratio to the no-init pipe in the same placement. When the measured ratio sits close to it, "
          "the CPUs, not pyinit's design, set the limit.")
        w("")
        w("| placement | CPUs (writer, init, reader) | no-init pipe MiB/s | pyinit MiB/s | pyinit ratio | "
          "pyinit per-round ratios | pyinit CPU s/GiB | writer / reader CPU s/GiB | ceiling | "
          "C copier MiB/s | C copier ratio |")
        w("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for place, rows in pl["places"].items():
            pipe = rows.get("no init (writer → pipe → reader)", {})
            py = rows.get("pyinit (capture, raw)", {})
            cp = rows.get("reference: read/write copier (C)", {})
            cpus = ", ".join("any" if c is None else str(c) for c in pl["cpus"][place])
            rr = " ".join(f"{x:.2f}" for x in run_ratios(py, pipe)) or "–"

            def g(v, k, spec=",.0f"):
                return "–" if v.get(k) is None else format(v[k], spec)
            ceil = placement_ceiling(pl["cpus"][place], py)
            cl = "–" if ceil is None or not pipe.get("mib_s") else fmt_ratio(ceil / pipe["mib_s"])
            w(f"| {place} | {cpus} | {g(pipe, 'mib_s')} | {g(py, 'mib_s')} | {rat(py, 'mib_s', pipe)} | {rr} | "
              f"{g(py, 'cpu_s_per_gib', '.3f')} | {g(py, 'writer_s_per_gib', '.2f')} / "
              f"{g(py, 'reader_s_per_gib', '.2f')} | {cl} | {g(cp, 'mib_s')} | {rat(cp, 'mib_s', pipe)} |")
        w("")

    if "procfile" in R:
        pf = R["procfile"]
        w("## Procfile mode: 8 processes writing concurrently")
        w("")
        if pf.get("status") == "ok":
            w(f"`pyinit --procfile` with 8 `logwriter` processes, {cfg['log_bytes'] / MIB:.0f} MiB in all, "
              "`prefix` format, every record checked; the writers linger after their last line (one process "
              "exiting stops the others), so the reader stops when every line arrived and pyinit then gets TERM. "
              "CPU: pyinit's wait4 rusage minus what the writers report.")
            w("")
            cpu = pf.get("cpu_s_per_gib")
            w("| MiB/s | lines/s | out MiB/s | pyinit CPU s/GiB | records checked | malformed | lost | dup |")
            w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            w(f"| {pf['mib_s']:,.0f} | {pf['lines_s']:,.0f} | {pf['out_mib_s']:,.0f} | "
              f"{'–' if cpu is None else f'{cpu:.3f}'} | {pf['records']:,} | "
              f"{pf['malformed']} | {pf['lost']} | {pf['dups']} |")
            if pf.get("errors"):
                w("")
                w(f"Errors: {'; '.join(pf['errors'][:3])}")
        else:
            w(f"**{pf.get('status')}**: {pf.get('detail', '')}. The measurement runs by itself once "
              "`pyinit --procfile` works.")
        w("")

    w("## Method")
    w("")
    w("`benches/run.sh` installs tini, dumb-init, catatonit and hyperfine from Debian where missing, builds "
      "pyinit with `RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --target "
      "x86_64-unknown-linux-gnu`, compiles the C helpers in `benches/helpers/` into `target/bench/`, and "
      "runs `benches/bench.py`. Raw samples: `target/bench/results.json`. Parameters: "
      + ", ".join(f"{k}={v}" for k, v in cfg.items() if k not in ("elapsed_s",)) + ".")
    w("")
    return "\n".join(L)


# --------------------------------------------------------------------------


def params(quick):
    if quick:
        return dict(quick=True, mem_rounds=2, se_rounds=4, se_per_round=10, sig_rounds=4, sig_per_round=25,
                    sd_rounds=4, sd_per_round=4, reap_rounds=2, reap_n=2500, reap_window=4096,
                    log_rounds=2, log_bytes=32 * MIB, place_rounds=1, hf_runs=0)
    return dict(quick=False, mem_rounds=5, se_rounds=20, se_per_round=25, sig_rounds=20, sig_per_round=50,
                sd_rounds=20, sd_per_round=10, reap_rounds=3, reap_n=30000, reap_window=4096,
                log_rounds=7, log_bytes=256 * MIB, place_rounds=3, hf_runs=300)


SECTIONS = ["binary", "memory", "start_exit", "signal", "shutdown", "reaping", "logs", "placement", "procfile",
            "hyperfine"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sample counts; finishes in under a minute")
    ap.add_argument("--pyinit", default=str(DEFAULT_PYINIT), help="pyinit binary (default: the static release build)")
    ap.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--output", default=str(ROOT / "benches" / "RESULTS.md"))
    ap.add_argument("--command-line", default=None, help="how the run was started, for the report")
    a = ap.parse_args()

    if os.geteuid() != 0:
        raise SystemExit("bench.py needs root (PID namespaces, /proc of other processes)")
    cfg = params(a.quick)
    only = set(a.only.split(",")) if a.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    if a.quick:
        only.discard("hyperfine")
    build_helpers()
    inits = discover_inits(a.pyinit)
    if not any(i.name == "pyinit" for i in inits):
        raise SystemExit(f"pyinit binary not found at {a.pyinit}")
    log("inits: " + ", ".join(f"{i.name}={i.path}" for i in inits))
    t_start = time.monotonic()
    R = {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(),
        "versions": versions(inits),
        "inits": [i.name for i in inits],
        "errors": {},
    }
    steps = [
        ("binary", lambda: sec_binary(inits, cfg)),
        ("memory", lambda: sec_memory(inits, cfg)),
        ("start_exit", lambda: sec_start_exit(inits, cfg)),
        ("signal", lambda: sec_latency(inits, cfg, "sig")),
        ("shutdown", lambda: sec_latency(inits, cfg, "shutdown")),
        ("reaping", lambda: sec_reaping(inits, cfg)),
        ("logs", lambda: sec_logs(inits, cfg)),
        ("placement", lambda: sec_placement(inits, cfg)),
        ("procfile", lambda: sec_procfile(inits, cfg)),
        ("hyperfine", lambda: sec_hyperfine(inits, cfg)),
    ]
    for name, fn in steps:
        if name not in only:
            continue
        log(f"{name} ...")
        t = time.monotonic()
        try:
            R[name] = fn()
        except Exception as e:  # noqa: BLE001 — one broken section must not lose the others
            R["errors"][name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        log(f"{name} done in {time.monotonic() - t:.1f} s")
    cfg["elapsed_s"] = time.monotonic() - t_start
    R["machine"]["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    R["params"] = cfg
    BIN.mkdir(parents=True, exist_ok=True)
    (BIN / "results.json").write_text(json.dumps(R, indent=1, default=str))
    cmdline = a.command_line or "python3 benches/bench.py " + " ".join(sys.argv[1:])
    text = render(R, cfg, cmdline.strip()) + probe_section()
    Path(a.output).write_text(text)
    log(f"wrote {a.output} ({cfg['elapsed_s']:.0f} s)")
    for t in targets(R):
        log(f"target: {t[0]}: {t[1]} (goal {t[2]}) → {t[3].replace('*', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
