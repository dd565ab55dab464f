#!/usr/bin/env python3
"""Turn the config.json that `runc spec` wrote into the one docker/e2e/run.sh needs.

Usage: mkconfig.py CONFIG --rootfs DIR --pyinit FILE --app DIR --out DIR
                   [--hostname NAME] [--nofile N] [--env K=V]... -- ARG...

What it changes, to look like a `docker run` of an image whose ENTRYPOINT is
["/pyinit", "--", ...]:
- no terminal (`docker run` without -t), process args as given, cwd /app;
- Docker's default capability set (moby's oci/caps/defaults.go) in the
  bounding, effective and permitted sets, nothing inheritable or ambient,
  and no_new_privileges off (Docker's default);
- Docker's default environment (PATH, HOSTNAME, HOME) plus --env;
- RLIMIT_NOFILE soft = hard = --nofile (this machine cannot raise it above
  20000, so run.sh passes min(20000, the caller's hard limit));
- a read-only root (the cached rootfs is shared by every run and must stay
  clean), with /pyinit and /app bind-mounted read-only, /out bind-mounted
  read-write (per container) and a tmpfs on /tmp;
- the namespaces runc spec lists (pid, network, ipc, uts, mount): a new, empty
  network namespace, in which runc brings up `lo` -- the loopback-only
  network of `docker run --network none`.
Seccomp and AppArmor are left out: they do not change signal delivery.
"""
import argparse
import json
import sys

DOCKER_DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def bind(src, dst, ro=True):
    opts = ["rbind", "nosuid", "nodev"] + (["ro"] if ro else ["rw"])
    return {"destination": dst, "type": "bind", "source": src, "options": opts}


def main(argv):
    if "--" not in argv:
        sys.exit("mkconfig.py: missing `-- ARG...`")
    split = argv.index("--")
    p = argparse.ArgumentParser(prog="mkconfig.py")
    p.add_argument("config")
    p.add_argument("--rootfs", required=True)
    p.add_argument("--pyinit", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--hostname", default="pyinit-e2e")
    p.add_argument("--nofile", type=int, default=20000)
    p.add_argument("--env", action="append", default=[])
    opts = p.parse_args(argv[:split])
    args = argv[split + 1 :]
    if not args:
        sys.exit("mkconfig.py: empty process args")

    with open(opts.config) as f:
        cfg = json.load(f)

    proc = cfg["process"]
    proc["terminal"] = False
    proc["args"] = args
    proc["cwd"] = "/app"
    proc["env"] = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"HOSTNAME={opts.hostname}",
        "HOME=/root",
    ] + opts.env
    proc["capabilities"] = {
        "bounding": list(DOCKER_DEFAULT_CAPS),
        "effective": list(DOCKER_DEFAULT_CAPS),
        "permitted": list(DOCKER_DEFAULT_CAPS),
    }
    proc["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "hard": opts.nofile, "soft": opts.nofile}
    ]
    proc["noNewPrivileges"] = False

    cfg["root"] = {"path": opts.rootfs, "readonly": True}
    cfg["hostname"] = opts.hostname
    cfg["mounts"] += [
        bind(opts.pyinit, "/pyinit"),
        bind(opts.app, "/app"),
        bind(opts.out, "/out", ro=False),
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
        },
    ]

    types = {ns["type"] for ns in cfg["linux"]["namespaces"]}
    for ns in ("pid", "network", "ipc", "uts", "mount"):
        if ns not in types:
            cfg["linux"]["namespaces"].append({"type": ns})

    with open(opts.config, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
