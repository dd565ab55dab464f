//! Finding pyinit's memory cgroup and reading its files.
//!
//! Everything here takes its inputs as text or as a directory, so the unit
//! tests run on fake cgroup directories with the kernel's exact formats:
//! - `/proc/self/cgroup`: `ID:CONTROLLERS:PATH` lines; cgroup v1 has a line
//!   whose controllers include `memory`, cgroup v2 the line `0::PATH`.
//! - `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS
//!   [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`. The cgroup directory is
//!   MOUNTPOINT + (PATH minus ROOT). In a container with its own cgroup
//!   namespace PATH is `/` and ROOT is `/` (or the container's cgroup
//!   seen from outside): the mount point is the cgroup.
//! - v2: `memory.events` (`max N`, `oom N`, `oom_kill N`, ...),
//!   `memory.max` (`max` or bytes), `memory.peak` (bytes; missing before
//!   Linux 5.19), `memory.oom.group` (`0`/`1`).
//! - v1: `memory.oom_control` (`oom_kill_disable N`, `under_oom N`,
//!   `oom_kill N`; `oom_kill` since Linux 4.13), `memory.limit_in_bytes`
//!   (a huge number means no limit; then `hierarchical_memory_limit` in
//!   `memory.stat` is the ancestors' limit), `memory.max_usage_in_bytes`.

use std::fmt;
use std::path::{Path, PathBuf};

/// v1 shows "no limit" as PAGE_COUNTER_MAX pages (about 2^63 bytes).
const V1_UNLIMITED: u64 = 1 << 62;

/// Which cgroup interface the memory controller uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// pyinit's memory cgroup: a directory and its interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemCgroup {
    pub version: Version,
    pub dir: PathBuf,
}

/// Why there is no OOM counter to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// `/proc/self/cgroup` or the mount table could not be read.
    NoProc(String),
    /// No memory controller in pyinit's cgroups (or none mounted).
    NoMemoryController,
    /// The cgroup's path is outside every mount of its hierarchy.
    NotMounted(String),
    /// The counter file cannot be read.
    Unreadable(PathBuf, String),
    /// The kernel does not count OOM kills (before Linux 4.13).
    NoCounter(PathBuf),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NoProc(e) => write!(f, "cannot read pyinit's cgroups: {e}"),
            Unavailable::NoMemoryController => write!(f, "no memory cgroup"),
            Unavailable::NotMounted(p) => {
                write!(f, "memory cgroup {p} is not mounted in this container")
            }
            Unavailable::Unreadable(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            Unavailable::NoCounter(p) => {
                write!(
                    f,
                    "{} has no oom_kill counter (kernel too old)",
                    p.display()
                )
            }
        }
    }
}

/// The OOM-related counters, as read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Processes killed by the OOM killer.
    pub oom_kill: u64,
    /// Events that come before a kill: v2 `max` + `oom`; v1 `under_oom`
    /// (a level, 0 or 1, rather than a count).
    pub pressure: u64,
}

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupLine<'a> {
    id: &'a str,
    controllers: &'a str,
    path: &'a str,
}

fn cgroup_lines(text: &str) -> impl Iterator<Item = CgroupLine<'_>> {
    text.lines().filter_map(|l| {
        let mut it = l.splitn(3, ':');
        Some(CgroupLine {
            id: it.next()?,
            controllers: it.next()?,
            path: it.next()?,
        })
    })
}

/// One line of `/proc/self/mountinfo`, the parts needed here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    root: String,
    point: String,
    fstype: String,
    super_opts: String,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .and_then(|o| std::str::from_utf8(o).ok());
        if let (b'\\', Some(Ok(v))) = (b[i], oct.map(|o| u8::from_str_radix(o, 8))) {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let tail: Vec<&str> = tail.split(' ').collect();
            Some(Mount {
                root: unescape(head.get(3)?),
                point: unescape(head.get(4)?),
                fstype: tail.first()?.to_string(),
                super_opts: tail.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The directory of cgroup `path` under mount `m`, when `m` shows it.
fn under_mount(m: &Mount, path: &str) -> Option<PathBuf> {
    let root = m.root.trim_end_matches('/');
    let rel = if path == "/" {
        // A cgroup namespace: pyinit's cgroup is the namespace's root,
        // which is what the container mounted (whatever ROOT says).
        ""
    } else if root.is_empty() {
        path
    } else if path == root {
        ""
    } else {
        path.strip_prefix(root).filter(|r| r.starts_with('/'))?
    };
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        return Some(PathBuf::from(&m.point));
    }
    Some(Path::new(&m.point).join(rel))
}

/// Finds the memory cgroup from the texts of `/proc/self/cgroup` and
/// `/proc/self/mountinfo`. v1's memory controller wins over v2 (on a
/// hybrid host memory is on v1 and the v2 tree has no controller).
/// `exists` says whether a directory is there (a fake tree in tests).
pub fn locate(
    proc_cgroup: &str,
    mountinfo: &str,
    exists: impl Fn(&Path) -> bool,
) -> Result<MemCgroup, Unavailable> {
    let mounts = mounts(mountinfo);
    let v1 = cgroup_lines(proc_cgroup)
        .find(|c| c.id != "0" && c.controllers.split(',').any(|x| x == "memory"));
    if let Some(line) = v1 {
        let found = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" && m.super_opts.split(',').any(|o| o == "memory"))
            .filter_map(|m| under_mount(m, line.path))
            .find(|d| exists(d));
        return match found {
            Some(dir) => Ok(MemCgroup {
                version: Version::V1,
                dir,
            }),
            None => Err(Unavailable::NotMounted(line.path.to_string())),
        };
    }
    let Some(line) = cgroup_lines(proc_cgroup).find(|c| c.id == "0" && c.controllers.is_empty())
    else {
        return Err(Unavailable::NoMemoryController);
    };
    let dir = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup2")
        .filter_map(|m| under_mount(m, line.path))
        .find(|d| exists(d))
        .ok_or_else(|| Unavailable::NotMounted(line.path.to_string()))?;
    // Without the memory controller there is no memory.events.
    if !exists(&dir.join("memory.events")) {
        return Err(Unavailable::NoMemoryController);
    }
    Ok(MemCgroup {
        version: Version::V2,
        dir,
    })
}

/// Finds pyinit's memory cgroup on this machine.
pub fn find() -> Result<MemCgroup, Unavailable> {
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| Unavailable::NoProc(e.to_string()));
    let cg = read("/proc/self/cgroup")?;
    let mi = read("/proc/self/mountinfo")?;
    locate(&cg, &mi, |p| p.exists())
}

/// The value of `key` in a flat-keyed file (`key value` lines).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A byte count file: a number, or `max` (v2) / a huge number (v1) for no limit.
pub fn bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse().ok().filter(|&n| n < V1_UNLIMITED)
}

impl MemCgroup {
    /// The file whose changes are watched and that holds `oom_kill`.
    pub fn counter_file(&self) -> PathBuf {
        self.dir.join(match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        })
    }

    /// Reads the counters; fails when the file is unreadable or lacks `oom_kill`.
    pub fn counters(&self) -> Result<Counters, Unavailable> {
        let path = self.counter_file();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Unavailable::Unreadable(path.clone(), e.to_string()))?;
        parse_counters(self.version, &text).ok_or(Unavailable::NoCounter(path))
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(name)).ok()
    }

    /// The memory limit in bytes (`None`: no limit, or unreadable). Where
    /// this cgroup has none, its ancestors' (v1 `hierarchical_memory_limit`;
    /// v2: the nearest parent directory with a `memory.max`, within the mount).
    pub fn limit(&self) -> Option<u64> {
        match self.version {
            Version::V1 => self
                .read("memory.limit_in_bytes")
                .and_then(|t| bytes(&t))
                .or_else(|| {
                    let stat = self.read("memory.stat")?;
                    keyed(&stat, "hierarchical_memory_limit").filter(|&n| n < V1_UNLIMITED)
                }),
            Version::V2 => {
                let mut dir = Some(self.dir.as_path());
                while let Some(d) = dir {
                    match std::fs::read_to_string(d.join("memory.max")) {
                        Ok(t) => {
                            if let Some(n) = bytes(&t) {
                                return Some(n);
                            }
                        }
                        // The cgroup root (or the top of a namespace) has none.
                        Err(_) => return None,
                    }
                    dir = d.parent();
                }
                None
            }
        }
    }

    /// Peak usage in bytes (`None` where the kernel does not keep it: v2
    /// `memory.peak` is missing before Linux 5.19).
    pub fn peak(&self) -> Option<u64> {
        let name = match self.version {
            Version::V1 => "memory.max_usage_in_bytes",
            Version::V2 => "memory.peak",
        };
        self.read(name)?.trim().parse().ok()
    }

    /// Current usage in bytes.
    pub fn usage(&self) -> Option<u64> {
        let name = match self.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        self.read(name)?.trim().parse().ok()
    }

    /// v2 `memory.oom.group` (`None` on v1 or where it is missing).
    pub fn oom_group(&self) -> Option<bool> {
        match self.version {
            Version::V1 => None,
            Version::V2 => match self.read("memory.oom.group")?.trim() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            },
        }
    }
}

/// Parses `memory.events` (v2) or `memory.oom_control` (v1).
pub fn parse_counters(version: Version, text: &str) -> Option<Counters> {
    let oom_kill = keyed(text, "oom_kill")?;
    let pressure = match version {
        Version::V2 => keyed(text, "max").unwrap_or(0) + keyed(text, "oom").unwrap_or(0),
        Version::V1 => keyed(text, "under_oom").unwrap_or(0),
    };
    Some(Counters { oom_kill, pressure })
}

/// What `-v` says at start: version, limit, `memory.oom.group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub version: Version,
    pub dir: PathBuf,
    pub limit: Option<u64>,
    pub oom_group: Option<bool>,
    /// How the counter is watched.
    pub watch: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory cgroup {} at {}: ",
            self.version.as_str(),
            self.dir.display()
        )?;
        match self.limit {
            Some(l) => write!(f, "memory limit {}", mib(l))?,
            None => write!(f, "no memory limit")?,
        }
        match self.oom_group {
            Some(true) => write!(
                f,
                ", memory.oom.group 1 (an OOM kill ends every process in the container, \
                 pyinit included: no report is possible then)"
            ),
            Some(false) => write!(
                f,
                ", memory.oom.group 0 (an OOM kill ends only the process the kernel picks)"
            ),
            None => Ok(()),
        }?;
        write!(f, "; OOM kills watched by {}", self.watch)
    }
}

/// Bytes as whole MiB, the way the report line shows them.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup directory with the given files.
    struct Fake(PathBuf);

    impl Fake {
        fn new(files: &[(&str, &str)]) -> Fake {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pyinit-cg-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                let p = dir.join(name);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            Fake(dir)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // Exact kernel output (Linux 6.x).
    const EVENTS_V2: &str = "low 0\nhigh 0\nmax 1043\noom 3\noom_kill 2\noom_group_kill 0\n";
    const OOM_CONTROL_V1: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
    const OOM_CONTROL_OLD: &str = "oom_kill_disable 0\nunder_oom 0\n";

    #[test]
    fn v2_counters_and_files() {
        let f = Fake::new(&[
            ("memory.events", EVENTS_V2),
            ("memory.max", "536870912\n"),
            ("memory.peak", "535822336\n"),
            ("memory.oom.group", "1\n"),
        ]);
        let cg = MemCgroup {
            version: Version::V2,
            dir: f.0.clone(),
        };
        assert_eq!(
            cg.counters().unwrap(),
            Counters {
                oom_kill: 2,
                pressure: 1046
            }
        );
        assert_eq!(cg.limit(), Some(512 << 20));
        assert_eq!(cg.peak(), Some(535822336));
        assert_eq!(cg.oom_group(), Some(true));
        assert_eq!(cg.usage(), None);
    }

    #[test]
    fn v2_max_means_no_limit_and_peak_may_be_missing() {
        // Linux < 5.19: no memory.peak. The parent of a fake dir has no
        // memory.max, as the cgroup root has none.
        let f = Fake::new(&[
            ("memory.events", EVENTS_V2),
            ("memory.max", "max\n"),
            ("memory.oom.group", "0\n"),
        ]);
        let cg = MemCgroup {
            version: Version::V2,
            dir: f.0.clone(),
        };
        assert_eq!(cg.limit(), None);
        assert_eq!(cg.peak(), None);
        assert_eq!(cg.oom_group(), Some(false));
    }

    #[test]
    fn v2_limit_of_an_ancestor() {
        let f = Fake::new(&[
            ("memory.max", "67108864\n"),
            ("pod/memory.max", "max\n"),
            ("pod/memory.events", EVENTS_V2),
        ]);
        let cg = MemCgroup {
            version: Version::V2,
            dir: f.0.join("pod"),
        };
        assert_eq!(cg.limit(), Some(64 << 20));
    }

    #[test]
    fn v1_counters_and_files() {
        let f = Fake::new(&[
            ("memory.oom_control", OOM_CONTROL_V1),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.max_usage_in_bytes", "67104768\n"),
        ]);
        let cg = MemCgroup {
            version: Version::V1,
            dir: f.0.clone(),
        };
        assert_eq!(
            cg.counters().unwrap(),
            Counters {
                oom_kill: 4,
                pressure: 0
            }
        );
        assert_eq!(cg.limit(), Some(64 << 20));
        assert_eq!(cg.peak(), Some(67104768));
        assert_eq!(cg.oom_group(), None);
    }

    #[test]
    fn v1_unlimited_falls_back_to_the_hierarchical_limit() {
        let f = Fake::new(&[
            ("memory.oom_control", OOM_CONTROL_V1),
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            (
                "memory.stat",
                "cache 0\nrss 4096\nhierarchical_memory_limit 268435456\nhierarchical_memsw_limit 9223372036854771712\n",
            ),
        ]);
        let cg = MemCgroup {
            version: Version::V1,
            dir: f.0.clone(),
        };
        assert_eq!(cg.limit(), Some(256 << 20));
        let unlimited = Fake::new(&[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            (
                "memory.stat",
                "hierarchical_memory_limit 9223372036854771712\n",
            ),
        ]);
        let cg = MemCgroup {
            version: Version::V1,
            dir: unlimited.0.clone(),
        };
        assert_eq!(cg.limit(), None);
    }

    #[test]
    fn a_kernel_without_the_counter_is_unavailable() {
        let f = Fake::new(&[("memory.oom_control", OOM_CONTROL_OLD)]);
        let cg = MemCgroup {
            version: Version::V1,
            dir: f.0.clone(),
        };
        assert!(matches!(cg.counters(), Err(Unavailable::NoCounter(_))));
        let missing = MemCgroup {
            version: Version::V2,
            dir: f.0.join("nope"),
        };
        assert!(matches!(
            missing.counters(),
            Err(Unavailable::Unreadable(..))
        ));
    }

    const MI_V2: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 23 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn v2_on_the_host() {
        let cg = locate("0::/system.slice/app.service\n", MI_V2, |p| {
            p.starts_with("/sys/fs/cgroup")
        })
        .unwrap();
        assert_eq!(cg.version, Version::V2);
        assert_eq!(
            cg.dir,
            PathBuf::from("/sys/fs/cgroup/system.slice/app.service")
        );
    }

    #[test]
    fn v2_in_a_container_with_its_own_cgroup_namespace() {
        // docker on v2: `0::/` and the namespace root mounted.
        let mi = "1 0 0:40 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n";
        let cg = locate("0::/\n", mi, |_| true).unwrap();
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup"));
        // Mount root shown as the host path: still the mount point.
        let mi = "1 0 0:40 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup rw\n";
        let cg = locate("0::/\n", mi, |_| true).unwrap();
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn v2_without_the_memory_controller() {
        let r = locate("0::/x\n", MI_V2, |p| !p.ends_with("memory.events"));
        assert_eq!(r, Err(Unavailable::NoMemoryController));
    }

    const MI_V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_memory_wins_on_a_hybrid_host() {
        let cg = locate(
            "9:name=systemd:/\n4:memory:/process_api/de8c\n1:cpu:/\n0::/\n",
            MI_V1,
            |_| true,
        )
        .unwrap();
        assert_eq!(cg.version, Version::V1);
        assert_eq!(
            cg.dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/de8c")
        );
    }

    #[test]
    fn v1_in_a_container_sharing_the_host_cgroup_namespace() {
        // docker on v1: the path is the host's, the mount root is the same path.
        let mi =
            "700 690 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
        let cg = locate("4:memory:/docker/abc\n", mi, |_| true).unwrap();
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup/memory"));
        let cg = locate("4:memory:/docker/abc/sub\n", mi, |_| true).unwrap();
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup/memory/sub"));
        // A sibling cgroup is not under this mount.
        assert!(matches!(
            locate("4:memory:/docker/abcd\n", mi, |_| true),
            Err(Unavailable::NotMounted(_))
        ));
    }

    #[test]
    fn v1_with_combined_controllers_and_escaped_mount_points() {
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory\\040x rw - cgroup cgroup rw,memory,cpu\n";
        let cg = locate("4:cpu,memory:/a\n", mi, |_| true).unwrap();
        assert_eq!(cg.dir, PathBuf::from("/sys/fs/cgroup/memory x/a"));
    }

    #[test]
    fn no_cgroup_at_all() {
        assert_eq!(
            locate("", "", |_| true),
            Err(Unavailable::NoMemoryController)
        );
        assert!(matches!(
            locate("0::/../../x\n", MI_V2, |_| true),
            Err(Unavailable::NotMounted(_))
        ));
    }

    #[test]
    fn summary_line() {
        let s = Summary {
            version: Version::V2,
            dir: "/sys/fs/cgroup".into(),
            limit: Some(512 << 20),
            oom_group: Some(true),
            watch: "inotify on memory.events".into(),
        };
        let t = s.to_string();
        assert!(t.starts_with("memory cgroup v2 at /sys/fs/cgroup: memory limit 512 MiB, memory.oom.group 1 (an OOM kill ends every process"), "{t}");
    }
}
