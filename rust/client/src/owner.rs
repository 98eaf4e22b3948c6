//! Who listens at a TCP endpoint: the socket's owner uid and, when it is
//! one of our processes, its pid and executable. A plain service (such as
//! the spfs-fuse-macos that spfs starts by itself) holds no lock and writes
//! no record, so this is the only way to know whose it is.
//!
//! Linux reads `/proc/net/tcp{,6}` (listening sockets with their uid and
//! inode), then finds the inode among `/proc/<pid>/fd` of our processes.
//! macOS asks `lsof`, which sees the sockets of our own processes.

use std::net::SocketAddr;

use crate::sys::{self, Instance};

/// The listener behind an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    /// The socket owner's uid.
    pub uid: u32,
    /// The process holding it, when it is ours and could be found.
    pub process: Option<Instance>,
}

impl Listener {
    /// Whether the socket belongs to another user.
    pub(crate) fn is_foreign(&self) -> bool {
        self.uid != sys::my_uid()
    }
}

/// Describe a uid for messages: the user name when it has one.
pub(crate) fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("user {} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// Whether a socket listens at the Unix socket path `path`: from the
/// kernel's table on Linux (`/proc/net/unix`, a listening socket has
/// `__SO_ACCEPTCON`); `None` where that cannot be told without connecting
/// (macOS), which would start a socket-activated service.
pub(crate) fn unix_socket_listens(path: &std::path::Path) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        const ACCEPTCON: u32 = 0x10000;
        let table = std::fs::read_to_string("/proc/net/unix").ok()?;
        // The table has the path as it was bound: ours, or another spelling
        // of it (a symlinked directory).
        let spellings = [Some(path.to_path_buf()), std::fs::canonicalize(path).ok()];
        Some(table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 8
                && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & ACCEPTCON != 0)
                && spellings
                    .iter()
                    .flatten()
                    .any(|p| p.as_os_str() == fields[7])
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The listener at `addr`, or `None` when none can be found.
///
/// The look blocks (it scans processes; on macOS it runs lsof), so with
/// this crate's `rt-multi-thread` feature (the C library's), on a
/// multi-thread runtime such as the library's one-worker runtime, it first
/// hands the worker's other tasks to another thread: a C, Swift or Python
/// caller's other calls and feeds go on meanwhile. (A current-thread
/// runtime, the CLI's, has nothing else to run.)
pub(crate) fn tcp_listener(addr: SocketAddr) -> Option<Listener> {
    #[cfg(feature = "rt-multi-thread")]
    if let Ok(tokio::runtime::RuntimeFlavor::MultiThread) =
        tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor())
    {
        return tokio::task::block_in_place(|| look_up(addr));
    }
    look_up(addr)
}

/// The owner's uid and the kernel's id (inode) of the socket listening at
/// `addr`, where they are seen without scanning processes. Linux's socket
/// tables name every user's listeners; macOS has no such table, and lsof
/// there sees only our own processes' sockets, so it could not tell
/// another user's listener either: `None`. (A kit service's reported pid
/// still has an owner to check.)
pub(crate) fn tcp_listen_entry(addr: SocketAddr) -> Option<(u32, u64)> {
    #[cfg(target_os = "linux")]
    return listen_entry(addr);
    #[cfg(not(target_os = "linux"))]
    return {
        let _ = addr;
        None
    };
}

/// The (uid, inode) of the socket listening at `addr`, from the kernel's
/// tables.
#[cfg(target_os = "linux")]
fn listen_entry(addr: SocketAddr) -> Option<(u32, u64)> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|text| find_listen_entry(&text, addr))
}

#[cfg(target_os = "linux")]
fn look_up(addr: SocketAddr) -> Option<Listener> {
    let (uid, inode) = listen_entry(addr)?;
    let process = (uid == sys::my_uid())
        .then(|| socket_holder(inode))
        .flatten();
    Some(Listener { uid, process })
}

/// The (uid, inode) of the listening socket bound to `addr` (or to the
/// wildcard address on its port) in one `/proc/net/tcp*` table.
#[cfg(target_os = "linux")]
fn find_listen_entry(table: &str, addr: SocketAddr) -> Option<(u32, u64)> {
    const LISTEN: &str = "0A";
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 10 || fields[3] != LISTEN {
            return None;
        }
        let (ip, port) = fields[1].split_once(':')?;
        if u16::from_str_radix(port, 16).ok()? != addr.port() {
            return None;
        }
        let ip = parse_proc_ip(ip)?;
        let matches = ip == addr.ip()
            || ip.is_unspecified()
            || matches!((ip, addr.ip()), (std::net::IpAddr::V6(v6), std::net::IpAddr::V4(v4))
                if v6.to_ipv4_mapped() == Some(v4));
        matches.then(|| Some((fields[7].parse().ok()?, fields[9].parse().ok()?)))?
    })
}

/// An address as `/proc/net/tcp*` prints it: each 32-bit word in hex, in
/// the host's byte order.
#[cfg(target_os = "linux")]
fn parse_proc_ip(hex: &str) -> Option<std::net::IpAddr> {
    let words: Option<Vec<[u8; 4]>> = (0..hex.len() / 8)
        .map(|i| {
            u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Whether process `pid` holds the socket listening at `addr`, one of
/// however many share it (a socket-activating manager holds it too);
/// `None` where that is not told without a lookup of who listens (macOS).
pub(crate) fn holds_tcp_listener(pid: u32, addr: SocketAddr) -> Option<bool> {
    #[cfg(target_os = "linux")]
    return Some(listen_entry(addr).is_some_and(|(_, inode)| holds_socket(pid, inode)));
    #[cfg(not(target_os = "linux"))]
    return {
        let _ = (pid, addr);
        None
    };
}

/// Whether process `pid` has the socket with `inode` among its descriptors.
#[cfg(target_os = "linux")]
fn holds_socket(pid: u32, inode: u64) -> bool {
    let target = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == target.as_str()))
    })
}

/// The process (of ours) holding the socket with `inode`.
#[cfg(target_os = "linux")]
fn socket_holder(inode: u64) -> Option<Instance> {
    let me = sys::my_uid();
    let mut holders: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| sys::process_uid(pid) == Some(me))
        .filter(|&pid| holds_socket(pid, inode))
        .collect();
    // Several processes may share the socket (a forked helper): the oldest
    // one (the lowest start time) is the server that created it.
    holders.sort_by_key(|&pid| sys::process_start_time(pid));
    holders.into_iter().find_map(Instance::of)
}

/// The listener at `addr`, or `None` when none can be found.
#[cfg(target_os = "macos")]
fn look_up(addr: SocketAddr) -> Option<Listener> {
    // lsof sees the sockets of our own processes; another user's listener
    // stays invisible (and is then treated as not ours).
    // -b: no stat of mount points, which blocks on a hung FUSE mount (a
    // wedged spfs-fuse-macos, the very case looked up); -w: its warnings.
    let out = std::process::Command::new("/usr/sbin/lsof")
        .args([
            "-b",
            "-w",
            "-nP",
            "-a",
            &format!("-iTCP:{}", addr.port()),
            "-sTCP:LISTEN",
            "-Fpn",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut pid = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix('p') {
            pid = p.parse::<u32>().ok();
        } else if let Some(name) = line.strip_prefix('n') {
            let host = name
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']));
            let matches = match host {
                Some("*") => true,
                Some(h) => h
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip == addr.ip()),
                None => false,
            };
            if matches && let Some(instance) = pid.and_then(Instance::of) {
                return Some(Listener {
                    uid: instance.uid()?,
                    process: Some(instance),
                });
            }
        }
    }
    None
}

/// No way to look: nobody is found.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn look_up(_addr: SocketAddr) -> Option<Listener> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn our_own_listener_is_found_with_our_pid() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let found = tcp_listener(addr).expect("our listener");
        assert_eq!(found.uid, sys::my_uid());
        assert_eq!(found.process.map(|p| p.pid), Some(std::process::id()));
        assert!(!found.is_foreign());
        drop(socket);
        assert_eq!(tcp_listener(addr), None, "gone with the socket");
    }
}
