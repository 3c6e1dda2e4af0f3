//! Child processes of the test process, read from `/proc`: shared by the embedding tests that
//! spawn upstream servers and check that none is left running or as a zombie.
#![allow(dead_code)]

/// The children (zombies included) of this process, from `/proc/<pid>/stat`.
pub fn children_of_this_process() -> Vec<u32> {
    let me = std::process::id();
    let dir = std::fs::read_dir("/proc").expect("/proc is mounted");
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after `(comm)` (which may contain spaces): state, then ppid.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// `pid` no longer exists as a child of ours: neither running nor a zombie.
pub fn assert_gone(pid: u32) {
    assert_ne!(
        parent_of(pid),
        Some(std::process::id()),
        "child {pid} is still in /proc (running or zombie)"
    );
}
