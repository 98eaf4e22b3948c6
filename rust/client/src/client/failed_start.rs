//! A start that failed, told to the calls that waited for it: they answer
//! with its failure instead of each starting the service again in turn (a
//! broken service met by N shells at once would otherwise be started N
//! times, one after another, the last with no time left).

use super::*;

/// What a failed start leaves in the state dir (`start-failed.json`), for
/// the calls that were waiting for it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct FailedStart {
    /// When it failed (Unix milliseconds).
    at_unix_ms: u64,
    /// Its error's kind, as [`ErrorKind::as_str`] writes it.
    kind: String,
    /// Its error's message.
    message: String,
    /// Its remedies: `run:OPERATION`, `key:KEY` or `config_file`.
    remedies: Vec<String>,
    /// The service's log when it failed.
    log_path: Option<std::path::PathBuf>,
    log_tail: Vec<String>,
}

impl FailedStart {
    fn of(e: &Error) -> FailedStart {
        FailedStart {
            at_unix_ms: unix_ms(SystemTime::now()),
            kind: e.kind().as_str().to_string(),
            message: e.message().to_string(),
            remedies: e.remedies().iter().map(remedy_text).collect(),
            log_path: e.log().map(|log| log.path.clone()),
            log_tail: e.log().map(|log| log.tail.clone()).unwrap_or_default(),
        }
    }

    /// The failure as the error of a call that waited for that start.
    fn error(self) -> Error {
        let message = format!(
            "the start another process made while this call waited failed: {}",
            self.message
        );
        self.error_saying(message)
    }

    /// The failure as it was, for a report of the last start.
    fn error_of_the_last_start(self) -> Error {
        let message = self.message.clone();
        self.error_saying(message)
    }

    /// The failure, with its kind, remedies and log, saying `message`.
    fn error_saying(self, message: String) -> Error {
        let kind = ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == self.kind)
            .unwrap_or(ErrorKind::Io);
        let mut error = Error::new(kind, message);
        for remedy in self.remedies.iter().filter_map(|text| remedy_of(text)) {
            error = error.with_remedy(remedy);
        }
        if let Some(path) = self.log_path {
            error = error.with_log(LogExcerpt {
                path,
                tail: self.log_tail,
            });
        }
        error
    }
}

fn remedy_text(remedy: &Remedy) -> String {
    match remedy {
        Remedy::SetKey(key) => format!("key:{key}"),
        Remedy::ConfigFile => "config_file".into(),
        Remedy::Run(operation) => format!("run:{}", operation.as_str()),
    }
}

fn remedy_of(text: &str) -> Option<Remedy> {
    if text == "config_file" {
        return Some(Remedy::ConfigFile);
    }
    if let Some(key) = text.strip_prefix("key:") {
        let key = crate::config::ConfigView::keys()
            .iter()
            .copied()
            .find(|k| *k == key)?;
        return Some(Remedy::SetKey(key));
    }
    let name = text.strip_prefix("run:")?;
    Operation::ALL
        .iter()
        .copied()
        .find(|op| op.as_str() == name)
        .map(Remedy::Run)
}

impl ServiceManager {
    /// Tell the calls waiting for this start that it failed with `e`.
    /// Called under `spawn.lock`, before it is let go.
    pub(super) fn remember_failed_start(&self, e: &Error) {
        let text = serde_json::to_vec(&FailedStart::of(e)).expect("record serializes");
        if let Err(e) =
            spfs_autostart_protocol::record::write_private(&self.paths.failed_start(), &text)
        {
            tracing::warn!("cannot tell waiting calls that the start failed: {e}");
        }
    }

    /// The failure of a start that ended after `since` (when this call
    /// began): the call waited for it, and answers with it.
    pub(super) fn start_failed_since(&self, since: SystemTime) -> Option<Error> {
        let failed = self.read_failed_start()?;
        (failed.at_unix_ms >= unix_ms(since)).then(|| failed.error())
    }

    /// A start succeeded: the failure of an earlier one is history, and so
    /// is an abandoned one's note to its daemon.
    pub(super) fn forget_failed_start(&self) {
        let _ = std::fs::remove_file(self.paths.failed_start());
        let _ = std::fs::remove_file(self.paths.abandoned_start());
    }

    /// The last start's failure, if the last start failed, with how long
    /// ago (for `doctor`, which says it while no service runs).
    pub(crate) fn last_failed_start(&self) -> Option<(Duration, Error)> {
        let failed = self.read_failed_start()?;
        let ago = unix_ms(SystemTime::now()).saturating_sub(failed.at_unix_ms);
        Some((Duration::from_millis(ago), failed.error_of_the_last_start()))
    }

    fn read_failed_start(&self) -> Option<FailedStart> {
        let text = std::fs::read(self.paths.failed_start()).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every remedy a failed start may carry reaches the calls that waited
    /// for it unchanged.
    #[test]
    fn every_remedy_reads_back_as_written() {
        let remedies = Operation::ALL
            .iter()
            .copied()
            .map(Remedy::Run)
            .chain(
                crate::config::ConfigView::keys()
                    .iter()
                    .map(|k| Remedy::SetKey(k)),
            )
            .chain([Remedy::ConfigFile]);
        for remedy in remedies {
            assert_eq!(remedy_of(&remedy_text(&remedy)), Some(remedy), "{remedy:?}");
        }
        assert_eq!(remedy_of("key:no_such_key"), None);
        assert_eq!(remedy_of("run:no such operation"), None);
    }
}
