//! Reaping (SPEC "What pyinit does" 4): as PID 1 every orphan reparented to
//! pyinit is reaped; outside a PID namespace pyinit registers as child
//! subreaper, so orphaned grandchildren reparent to it, are reaped, and are
//! stopped with the rest.
mod util;
use std::time::Duration;
use util::*;

const T: Duration = Duration::from_secs(10);

/// Descendants of `pid` in Z state.
fn zombies_below(pid: i32) -> Vec<i32> {
    descendants_of(pid)
        .into_iter()
        .filter(|&p| proc_state(p) == Some('Z'))
        .collect()
}

#[test]
fn hundreds_of_orphans_leave_no_zombie_as_pid1() {
    let r = Builder::new()
        .args(["--", "python3"])
        .arg(fixture("reap_orphans.py"))
        .arg("300")
        .spawn();
    r.wait_stdout(Duration::from_secs(30), |l| l == "ORPHANS DONE");
    let pyinit = r.pyinit_pid();
    // Every orphan exits once reparented; pyinit must reap all of them
    // while the main process keeps running (it is all that is left).
    let mut left = Vec::new();
    let clean = eventually(T, || {
        left = descendants_of(pyinit);
        left.len() == 1 && proc_state(left[0]) != Some('Z')
    });
    assert!(
        clean,
        "still below pyinit: {} processes, zombies: {:?}",
        left.len(),
        zombies_below(pyinit)
    );
    assert_eq!(zombies_below(pyinit), Vec::<i32>::new());
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    // The fixture has no TERM handler.
    assert_code(&out, 143);
}

/// `NAME pid=P ppid=Q` from reap_subreaper.py.
fn reported(r: &Running, name: &str) -> (i32, i32) {
    let line = r.wait_stdout(T, |l| l.starts_with(&format!("{name} pid=")));
    let mut it = line.split_whitespace().skip(1).map(|kv| {
        kv.split_once('=')
            .and_then(|(_, v)| v.parse::<i32>().ok())
            .unwrap_or_else(|| panic!("bad line {line:?}"))
    });
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn subreaper_adopts_reaps_and_stops_grandchildren() {
    let r = Builder::new()
        .pid1(false)
        .args(["--", "python3"])
        .arg(fixture("reap_subreaper.py"))
        .spawn();
    let pyinit = r.pyinit_pid();
    // Not in a PID namespace: the fixture reports host pids.
    let (linger, linger_ppid) = reported(&r, "linger");
    let (quick, quick_ppid) = reported(&r, "quick");
    r.wait_stdout(T, |l| l == "MAIN READY");
    assert_eq!(linger_ppid, pyinit, "linger was not reparented to pyinit");
    assert_eq!(quick_ppid, pyinit, "quick was not reparented to pyinit");
    assert_eq!(
        proc_status_field(linger, "PPid"),
        Some(pyinit.to_string()),
        "PPid of the lingering grandchild"
    );
    // quick exited: pyinit must have reaped it (no zombie left).
    assert!(
        eventually(T, || proc_state(quick).is_none()),
        "quick grandchild {quick} still exists in state {:?}",
        proc_state(quick)
    );
    assert_eq!(zombies_below(pyinit), Vec::<i32>::new());
    // TERM kills the main process (no handler); the grandchild left its
    // session, so only pyinit as subreaper can stop it.
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 143);
    assert!(
        out.stdout_str().contains("linger got 15\n"),
        "{}",
        out.stdout_str()
    );
    assert!(
        eventually(T, || proc_state(linger).is_none()),
        "grandchild {linger} outlived pyinit"
    );
}

#[test]
fn orphans_reparent_to_pid1_and_are_stopped_on_term() {
    let r = Builder::new()
        .args(["--", "python3"])
        .arg(fixture("reap_subreaper.py"))
        .spawn();
    let pyinit = r.pyinit_pid();
    // Inside the namespace: pyinit is PID 1.
    let (_, linger_ppid) = reported(&r, "linger");
    let (_, quick_ppid) = reported(&r, "quick");
    r.wait_stdout(T, |l| l == "MAIN READY");
    assert_eq!((linger_ppid, quick_ppid), (1, 1));
    // Left: the main process and the lingering grandchild, no zombie.
    let mut left = Vec::new();
    assert!(
        eventually(T, || {
            left = descendants_of(pyinit);
            left.len() == 2
        }),
        "below pyinit: {left:?}, zombies {:?}",
        zombies_below(pyinit)
    );
    assert_eq!(zombies_below(pyinit), Vec::<i32>::new());
    r.signal(libc::SIGTERM);
    let out = r.wait(T);
    assert_code(&out, 143);
    assert!(
        out.stdout_str().contains("linger got 15\n"),
        "{}",
        out.stdout_str()
    );
}
