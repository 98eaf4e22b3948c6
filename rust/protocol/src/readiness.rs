//! The readiness pipe ([`crate::env::READY_FD`]): the one line a service
//! writes its spawner, `READY <pid>` once it serves or `FAILED <why>` when
//! it cannot start.

/// What the service said on the readiness pipe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// It serves.
    Ready,
    /// It cannot start, and why (or a line that is neither).
    Failed(String),
}

/// The line a service that serves writes: in one write, so a spawner never
/// sees half of it (it copes with that too).
pub fn ready_line(pid: u32) -> String {
    format!("READY {pid}\n")
}

/// The line a service that cannot start writes, `why` on one line.
pub fn failed_line(why: &str) -> String {
    format!("FAILED {}\n", why.replace('\n', " "))
}

/// The first complete line in `buf`, if one has arrived.
pub fn parse(buf: &[u8]) -> Option<Readiness> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = String::from_utf8_lossy(&buf[..end]).into_owned();
    Some(match line.split_once(' ') {
        Some(("FAILED", reason)) => Readiness::Failed(reason.to_string()),
        _ if line.starts_with("READY") => Readiness::Ready,
        _ => Readiness::Failed(format!("unexpected readiness message {line:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_service_writes_is_what_a_spawner_reads() {
        assert_eq!(parse(ready_line(42).as_bytes()), Some(Readiness::Ready));
        assert_eq!(
            parse(failed_line("no\nway").as_bytes()),
            Some(Readiness::Failed("no way".into()))
        );
        assert_eq!(parse(b"READY 4"), None, "half a line waits for the rest");
        assert!(matches!(parse(b"HELLO\n"), Some(Readiness::Failed(m)) if m.contains("HELLO")));
    }
}
