//! Who holds a lease: this process, named `host:pid:nonce`, and whether a named holder is
//! known to be gone (it ran on this host and its process id is no longer alive). A lease whose
//! holder is gone can be taken over at once instead of waiting out its expiry.
//!
//! (The ASL engine keeps the same rule for its execution leases in
//! `sluice_statemachine::executor::lease`: it cannot depend on this crate without taking in the
//! AWS SDK.)

use std::sync::OnceLock;

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This process as a lease holder (the same for the whole process).
pub fn this_process() -> &'static str {
    static OWNER: OnceLock<String> = OnceLock::new();
    OWNER.get_or_init(|| {
        format!(
            "{}:{}:{}",
            host_name(),
            std::process::id(),
            hex::encode(rand::random::<[u8; 8]>())
        )
    })
}

/// Whether the holder `owner` ran on this host and its process is gone (or a zombie).
/// Elsewhere nothing can be known: only the lease's expiry tells.
pub fn is_gone(owner: &str) -> bool {
    let mut parts = owner.splitn(3, ':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() || owner == this_process() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else { return false };
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        return false;
    }
    match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_vanished_pid_is_gone() {
        assert!(!is_gone(this_process()));
        let host = host_name();
        // Another live process of this host (pid 1 always exists).
        assert!(!is_gone(&format!("{host}:1:x")));
        assert!(is_gone(&format!("{host}:{}:x", u32::MAX - 7)));
        assert!(
            !is_gone("elsewhere:99999999:x"),
            "another host's process cannot be judged"
        );
        assert!(!is_gone("garbage"));
    }
}
