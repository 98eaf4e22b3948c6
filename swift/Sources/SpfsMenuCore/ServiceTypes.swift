import Foundation

// The model's own view of the service. These mirror the uniffi records, so that nothing in
// SpfsMenuCore depends on generated names; `SpfsMenuLive.LiveServiceClient` converts in one
// place. Errors arrive already in words (`ServiceFailure`).

/// What the service is doing, as `status()` and `watch()` report it.
public enum ServiceStateKind: String, Sendable, Equatable, CaseIterable {
    case running
    case starting
    case stopping
    case stopped
    /// Alive (its instance lock is held) but not answering.
    case unresponsive
    /// The endpoint is answered by something that is not our service.
    case conflict
}

/// A runtime that keeps the service alive (see the kit's leases).
public struct ServiceLease: Sendable, Equatable, Hashable {
    public var id: UInt64
    public var pid: UInt32
    public var label: String

    public init(id: UInt64, pid: UInt32, label: String) {
        self.id = id
        self.pid = pid
        self.label = label
    }
}

/// An environment the service has mounted for a process tree (from `VfsService/Status`).
public struct ServiceMount: Sendable, Equatable, Hashable {
    public var runtimeName: String
    public var rootPid: UInt32
    public var editable: Bool
    /// spfs's EnvSpec text; "-" is the empty environment.
    public var envSpec: String

    public init(runtimeName: String, rootPid: UInt32, editable: Bool, envSpec: String) {
        self.runtimeName = runtimeName
        self.rootPid = rootPid
        self.editable = editable
        self.envSpec = envSpec
    }
}

/// When a running kit service exits for idleness, or why it does not yet.
public enum ServiceIdleExit: Sendable, Equatable {
    /// In this many seconds, unless a call or a lease comes first.
    case after(secs: UInt64)
    /// Never: its idle timeout is 0.
    case never
    /// Not while it holds leases.
    case notWhileLeased
    /// Not while a call is in flight.
    case notWhileBusy
}

/// One status report of the service.
public struct ServiceSnapshot: Sendable, Equatable {
    public var state: ServiceStateKind
    public var pid: UInt32?
    public var version: String?
    public var endpoint: String
    public var uptimeSecs: UInt64?
    public var logFile: String
    public var leases: [ServiceLease]
    /// Empty when the service does not report its mounts.
    public var mounts: [ServiceMount]
    /// Who uses the service, in words ("spfs shell (pid 77)"): each runtime it mounted for,
    /// then each other lease holder. What a stop cuts off; worked out by the core.
    public var users: [String]
    /// `nil` unless a running kit service told its idle timeout.
    public var idleExit: ServiceIdleExit?
    public var warnings: [String]
    public var detail: String?

    public init(
        state: ServiceStateKind,
        pid: UInt32? = nil,
        version: String? = nil,
        endpoint: String = "",
        uptimeSecs: UInt64? = nil,
        logFile: String = "",
        leases: [ServiceLease] = [],
        mounts: [ServiceMount] = [],
        users: [String] = [],
        idleExit: ServiceIdleExit? = nil,
        warnings: [String] = [],
        detail: String? = nil
    ) {
        self.state = state
        self.pid = pid
        self.version = version
        self.endpoint = endpoint
        self.uptimeSecs = uptimeSecs
        self.logFile = logFile
        self.leases = leases
        self.mounts = mounts
        self.users = users
        self.idleExit = idleExit
        self.warnings = warnings
        self.detail = detail
    }
}

/// What `stop()` found.
public enum StopResult: Sendable, Equatable {
    /// It was running and has stopped, by this step of the stop sequence.
    case stopped(StopHow)
    case notRunning
}

/// The step of the stop sequence that ended the service.
public enum StopHow: Sendable, Equatable {
    /// It shut down when asked (over RPC, or by its graceful signal).
    case graceful
    /// A signal that is not its graceful exit ended it (SIGTERM): it may have left things
    /// behind (spfs-fuse-macos its mount).
    case terminated
    /// It had to be killed with SIGKILL and could clean up nothing.
    case killed
}

/// An error from the service library, with what the user needs to act on it.
///
/// The model keeps no list of the library's error kinds or remedies:
/// `SpfsMenuLive.LiveServiceClient` gives each kind its headline and each remedy the app's own
/// words, in exhaustive switches, and the model shows what it is given.
public struct ServiceFailure: Error, Sendable, Equatable {
    /// A short headline for the failure's kind, shown above the message.
    public var title: String
    /// The library's message: what happened, to what, and what to do next.
    public var message: String
    /// What the user can do about it, in the app's words ("Choose Stop in the menu"), in the
    /// library's order; empty when the library names no remedy.
    public var hints: [String]
    /// The service's log file, for startup failures.
    public var logFile: String?
    /// The last lines of the service log, for startup failures.
    public var logTail: [String]

    public init(
        title: String, message: String, hints: [String] = [], logFile: String? = nil,
        logTail: [String] = []
    ) {
        self.title = title
        self.message = message
        self.hints = hints
        self.logFile = logFile
        self.logTail = logTail
    }

    /// The headline of an error that did not come from the library.
    public static let unexpectedTitle = "Internal error"

    /// The error as a `ServiceFailure`: itself when it is one, else a failure titled
    /// `unexpectedTitle` that carries its description.
    public static func from(_ error: any Error) -> ServiceFailure {
        if let failure = error as? ServiceFailure { return failure }
        return ServiceFailure(title: unexpectedTitle, message: String(describing: error))
    }
}

/// How bad a diagnosis finding is.
public enum DiagnosisSeverity: Sendable, Equatable {
    /// As it should be.
    case ok
    /// Works, but the user should know.
    case warning
    /// Stops the service from working.
    case problem
}

/// One thing the doctor checked, with its fix.
public struct DiagnosisFinding: Sendable, Equatable, Hashable {
    /// What was checked: "program", "endpoint", "state dir", ...
    public var check: String
    /// How it went.
    public var severity: DiagnosisSeverity
    /// What was found.
    public var message: String
    /// What to do about it, for warnings and problems.
    public var fix: String?
    /// The fix in the app's words (a menu item, a toggle, a config key), where the library
    /// gave it as data; as an error's hints.
    public var hints: [String]

    public init(
        check: String, severity: DiagnosisSeverity, message: String, fix: String? = nil,
        hints: [String] = []
    ) {
        self.check = check
        self.severity = severity
        self.message = message
        self.fix = fix
        self.hints = hints
    }

    /// The finding as one line: "PROBLEM  endpoint: ...", as `spfs-autostart doctor` prints it.
    public var line: String {
        let label: String
        switch severity {
        case .ok: label = "ok"
        case .warning: label = "WARNING"
        case .problem: label = "PROBLEM"
        }
        return "\(label)  \(check): \(message)"
    }
}

/// Everything the doctor found (`spfs-autostart doctor`).
public struct DiagnosisReport: Sendable, Equatable {
    /// Every finding, in the order checked.
    public var findings: [DiagnosisFinding]
    /// What `ensure` would do next.
    public var next: String
    /// No finding is a problem.
    public var healthy: Bool

    public init(findings: [DiagnosisFinding], next: String, healthy: Bool) {
        self.findings = findings
        self.next = next
        self.healthy = healthy
    }

    /// The report as lines: each finding, its fix and the app's hints indented below, then
    /// the next step.
    public var lines: [String] {
        var lines: [String] = []
        for finding in findings {
            lines.append(finding.line)
            if let fix = finding.fix { lines.append("    fix: \(fix)") }
            lines += finding.hints.map { "    \($0)" }
        }
        lines.append("next: \(next)")
        return lines
    }
}
