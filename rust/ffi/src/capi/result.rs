//! `spfs_autostart_result`: the C result codes.

/// The result of a fallible call. The values are stable: new codes are only
/// ever added. An `int32_t` in C.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum spfs_autostart_result {
    /// Success; the outputs were written.
    Ok = 0,
    /// The service program was not found where the library looked (the
    /// message lists the places).
    BinaryNotFound = 1,
    /// The program was found but could not be started.
    SpawnFailed = 2,
    /// The service exited before it became ready (see the log tail).
    ExitedDuringStartup = 3,
    /// The service did not become ready in time; it was killed.
    ReadyTimeout = 4,
    /// A service is alive but does not answer.
    Unresponsive = 5,
    /// The endpoint is taken by something that is not our service.
    EndpointConflict = 6,
    /// A file or directory has an owner or mode we must not use.
    PermissionDenied = 7,
    /// The running service has another version than the configured one.
    VersionMismatch = 8,
    /// The configuration is malformed or names something unusable, or the
    /// config file cannot be read.
    InvalidConfig = 9,
    /// The operation does not exist on this system.
    Unsupported = 10,
    /// Any other operating-system error.
    Io = 11,
    /// A failure of a kind this library version does not know.
    Internal = 12,
    /// `launchctl` refused, timed out or could not be run.
    LaunchctlFailed = 13,
    /// A pointer parameter that must not be NULL was NULL.
    NullParameter = 100,
    /// A string parameter was not valid UTF-8.
    InvalidUtf8 = 101,
    /// The library panicked (a bug); the call had no effect on the outputs.
    Panic = 102,
}
