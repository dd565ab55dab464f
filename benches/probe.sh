#!/usr/bin/env bash
# Cost of one health probe: `pyinit health --http URL` against `curl -fsS URL`
# and the `python3 -c "import urllib.request; ..."` form of many Dockerfiles,
# each run as a fresh process against the same local HTTP endpoint, as
# Docker's HEALTHCHECK or a Kubernetes exec probe runs them. Also
# `pyinit health` asking a running pyinit over its control socket (process
# states plus its http readiness probe run again).
#
#   benches/probe.sh [--runs N] [--no-build] [--output FILE]
#
# Needs hyperfine (apt-get install -y hyperfine), curl and python3. Writes
# benches/PROBE-RESULTS.md (generated; do not edit) and the raw hyperfine
# JSON in target/bench/probe-*.json. Targets: under 5 ms wall and 2 ms CPU
# per pyinit probe, at least 10x cheaper (CPU) than the Python form.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

runs=300
build=1
output="$root/benches/PROBE-RESULTS.md"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --output) output="$2"; shift 2 ;;
        *) echo "usage: benches/probe.sh [--runs N] [--no-build] [--output FILE]" >&2; exit 1 ;;
    esac
done

for tool in hyperfine curl python3; do
    command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
if [[ $build -eq 1 ]]; then
    ./scripts/build-static.sh >/dev/null
fi
pyinit="$root/target/x86_64-unknown-linux-gnu/release/pyinit"
[[ -x "$pyinit" ]] || { echo "error: $pyinit is missing (scripts/build-static.sh)" >&2; exit 1; }
# The interpreter itself, not a pyenv shim (a shell script that would add
# its own cost to the Python form).
python=$(python3 -c 'import sys; print(sys.executable)')

out="$root/target/bench"
work=$(mktemp -d)
mkdir -p "$out"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The endpoint: Python's http.server, one small file. The same server answers
# every form, so its own cost is the same in each.
port=$(free_port)
mkdir -p "$work/www"
echo ok > "$work/www/health"
"$python" -m http.server "$port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
pids+=($!)
url="http://127.0.0.1:$port/health"
for _ in $(seq 100); do curl -fsS "$url" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fsS "$url" >/dev/null

# A running pyinit (subreaper, not PID 1) serving its own endpoint with an
# http readiness probe, for `pyinit health` over the socket.
port2=$(free_port)
sock="$work/run/control.sock"
cat > "$work/pyinit.toml" <<EOF
[process.web]
command = ["$python", "-m", "http.server", "$port2", "--bind", "127.0.0.1", "--directory", "$work/www"]
ready = { http = "http://127.0.0.1:$port2/health" }
EOF
PYINIT_SOCKET="$sock" "$pyinit" -q --config "$work/pyinit.toml" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do PYINIT_SOCKET="$sock" "$pyinit" health >/dev/null 2>&1 && break; sleep 0.05; done
PYINIT_SOCKET="$sock" "$pyinit" health

absent="$work/absent.sock"
py_cmd="import urllib.request; urllib.request.urlopen('$url')"
common=(-N --warmup 20 --style basic)
echo "==> $runs runs each (Python: $((runs / 3)))"
PYINIT_SOCKET="$absent" hyperfine "${common[@]}" --runs "$runs" \
    --export-json "$out/probe-pyinit.json" -n "pyinit health --http" "$pyinit health --http $url"
PYINIT_SOCKET="$sock" hyperfine "${common[@]}" --runs "$runs" \
    --export-json "$out/probe-pyinit-socket.json" -n "pyinit health (socket)" "$pyinit health"
hyperfine "${common[@]}" --runs "$runs" \
    --export-json "$out/probe-curl.json" -n "curl -fsS" "curl -fsS -o /dev/null $url"
hyperfine "${common[@]}" --runs "$runs" \
    --export-json "$out/probe-floor.json" -n "/bin/true (process floor)" "/bin/true"
hyperfine "${common[@]}" --runs "$((runs / 3))" \
    --export-json "$out/probe-python.json" -n "python -c urllib" "$python -c \"$py_cmd\""

"$python" - "$out" "$output" "$runs" "$pyinit" "$python" <<'EOF'
import json, os, platform, subprocess, sys, time
out, output, runs, pyinit, python = sys.argv[1:6]

def load(name):
    # hyperfine's "user" and "system" are the means over the runs, in seconds.
    r = json.load(open(os.path.join(out, f"probe-{name}.json")))["results"][0]
    return {
        "name": r["command"],
        "mean": r["mean"] * 1e3, "stddev": (r["stddev"] or 0) * 1e3,
        "median": r["median"] * 1e3, "min": r["min"] * 1e3,
        "user": r["user"] * 1e3, "system": r["system"] * 1e3,
        "runs": len(r["times"]),
    }

rows = {k: load(k) for k in ["pyinit", "pyinit-socket", "curl", "python", "floor"]}
for r in rows.values():
    r["cpu"] = r["user"] + r["system"]

def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except Exception:
        return "?"

p, c, y = rows["pyinit"], rows["curl"], rows["python"]
lines = []
w = lines.append
w("# Probe cost: `pyinit health` vs curl vs python urllib")
w("")
w("Generated by `benches/probe.sh` (do not edit). One probe = one fresh process doing one")
w("GET against a local `python3 -m http.server` endpoint, as a HEALTHCHECK runs it.")
w("Wall time and CPU (user + system of the probe process) from hyperfine (`-N`, no shell).")
w("")
w(f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
w(f"- machine: {os.cpu_count()} CPUs, {platform.machine()}, kernel {platform.release()}, load average {os.getloadavg()[0]:.2f}")
w(f"- pyinit: static release build, {os.path.getsize(pyinit)} bytes")
w(f"- {ver(['curl', '--version'])}")
w(f"- {ver([python, '--version'])} ({python})")
w("")
w("| probe | runs | wall mean ± sd (ms) | wall median (ms) | user (ms) | system (ms) | CPU (ms) |")
w("| --- | --- | --- | --- | --- | --- | --- |")
for r in rows.values():
    w(f"| `{r['name']}` | {r['runs']} | {r['mean']:.2f} ± {r['stddev']:.2f} | {r['median']:.2f} | {r['user']:.2f} | {r['system']:.2f} | {r['cpu']:.2f} |")
w("")
w("Ratios (how many times cheaper `pyinit health --http` is):")
w("")
w(f"- vs curl: wall {c['mean'] / p['mean']:.1f}x, CPU {c['cpu'] / p['cpu']:.1f}x")
w(f"- vs python urllib: wall {y['mean'] / p['mean']:.1f}x, CPU {y['cpu'] / p['cpu']:.1f}x")
s = rows["pyinit-socket"]
w(f"- `pyinit health` over the socket (state of every process + its http probe again): wall {s['mean']:.2f} ms, CPU {s['cpu']:.2f} ms")
w("")
f = rows["floor"]
w(f"- the floor, `/bin/true` started the same way: wall median {f['median']:.2f} ms, CPU {f['cpu']:.2f} ms (fork,")
w("  exec and hyperfine's accounting); above it, `pyinit health --http` costs "
  f"{p['median'] - f['median']:.2f} ms wall (medians) and {p['cpu'] - f['cpu']:.2f} ms CPU")
w("- the machine is shared (2 CPUs, other builds running): means move by 2x between runs; the")
w("  medians and CPU times are the steadier figures")
w("")
w("Targets:")
w("")
ok = lambda b: "met" if b else "NOT met"
w(f"- wall < 5 ms: {p['mean']:.2f} ms, {ok(p['mean'] < 5)}")
w(f"- CPU < 2 ms: {p['cpu']:.2f} ms, {ok(p['cpu'] < 2)}")
w(f"- >= 10x cheaper than python (CPU): {y['cpu'] / p['cpu']:.1f}x, {ok(y['cpu'] / p['cpu'] >= 10)}; (wall): {y['mean'] / p['mean']:.1f}x, {ok(y['mean'] / p['mean'] >= 10)}")
open(output, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
