import Foundation

/// A message shown in the menu: a headline, the detail, what to do about it, and log lines
/// when there are some.
public struct MenuMessage: Sendable, Equatable {
    public var title: String
    public var message: String
    /// What the user can do, in the app's words, one line each, shown under the message.
    public var hints: [String]
    public var logTail: [String]

    public init(title: String, message: String, hints: [String] = [], logTail: [String] = []) {
        self.title = title
        self.message = message
        self.hints = hints
        self.logTail = logTail
    }

    public init(_ failure: ServiceFailure) {
        self.init(
            title: failure.title, message: failure.message, hints: failure.hints,
            logTail: failure.logTail)
    }

    /// What the user should know after a Stop that worked: nothing for a graceful one; for a
    /// service that had to be ended by force, that it cleaned up nothing (spfs-fuse-macos
    /// leaves its mount behind), and where to look.
    static func uncleanStop(_ result: StopResult) -> MenuMessage? {
        let what: String
        switch result {
        case .notRunning, .stopped(.graceful):
            return nil
        case .stopped(.terminated):
            what = "It did not exit when asked, so it was ended with SIGTERM."
        case .stopped(.killed):
            what = "It did not exit when asked or on SIGTERM, so it was killed (SIGKILL)."
        }
        return MenuMessage(
            title: "The service did not stop cleanly",
            message: what
                + " It may have left things behind: spfs-fuse-macos leaves its mount in place."
                + " The log shows what it was doing.")
    }

    /// The question to ask before stopping a service that runtimes use: who uses it
    /// (`ServiceSnapshot.users`), and what stopping it does to them. `nil` when nothing uses
    /// it, or nothing is known of it.
    static func stopInUse(_ snapshot: ServiceSnapshot?) -> MenuMessage? {
        guard let users = snapshot?.users, !users.isEmpty else { return nil }
        let count = users.count == 1 ? "1 runtime" : "\(users.count) runtimes"
        return MenuMessage(
            title: "Stop the service while it is in use?",
            message: "In use by \(count): \(users.joined(separator: ", "))."
                + " Stopping it takes it away from them: an SPFS runtime loses its filesystem.")
    }
}

/// One label/value line of the status details.
public struct DetailRow: Sendable, Hashable {
    public var label: String
    public var value: String

    public init(_ label: String, _ value: String) {
        self.label = label
        self.value = value
    }
}

/// Everything the menu shows. A value: the model replaces it, views only read it.
public struct MenuState: Sendable, Equatable {
    /// The last status seen; nil until the first `refresh`.
    public var service: ServiceSnapshot?
    /// An action (start, stop, refresh, a toggle) is in flight; buttons are disabled.
    public var busy: Bool = false
    /// The last thing that went wrong, until the user dismisses it, a start or stop succeeds,
    /// or the service runs again. A refresh keeps it: reading the status again does not
    /// answer why a start failed.
    public var lastError: MenuMessage?
    /// A hint that is not an error, such as "approve in System Settings".
    public var notice: String?
    public var launchAtLogin: LoginItemStatus = .notRegistered
    /// The bundled LaunchAgent that keeps the service running.
    public var keepRunning: LoginItemStatus = .notRegistered
    /// The last lines of the service log, oldest first.
    public var recentLogs: [String] = []
    /// The last "Diagnose..." report, until the user dismisses it.
    public var diagnosis: DiagnosisReport?
    /// Stop was pressed while runtimes use the service: the question shown until the user
    /// answers it (`MenuModel.confirmStop`, `cancelStop`) or the service stops by itself.
    public var stopConfirmation: MenuMessage?

    public init() {}

    public var stateKind: ServiceStateKind? { service?.state }

    public var isRunning: Bool { service?.state == .running }

    /// Whether the primary button stops (true) or starts (false) the service. A service
    /// stuck stopping can be stopped (the stop sequence ends it), and a conflict with a pid
    /// is our own service serving where the config no longer says: the library's remedy is
    /// to stop it (a start would fail the same way).
    public var primaryActionStops: Bool {
        switch service?.state {
        case .running?, .starting?, .unresponsive?, .stopping?: return true
        case .conflict?: return service?.pid != nil
        case .stopped?, nil: return false
        }
    }

    /// The SF Symbol for the menu bar. The menu bar draws symbols as templates and ignores
    /// colour, so every state has its own shape.
    public var symbolName: String {
        switch service?.state {
        case .running?:
            return "externaldrive.fill.badge.checkmark"
        case .starting?, .stopping?:
            return "arrow.triangle.2.circlepath"
        case .unresponsive?, .conflict?:
            return "externaldrive.badge.exclamationmark"
        case .stopped?, nil:
            return lastError == nil ? "externaldrive" : "externaldrive.badge.xmark"
        }
    }

    /// One line for the top of the menu.
    public var headline: String {
        switch service?.state {
        case .running?: return "SPFS service running"
        case .starting?: return "SPFS service starting"
        case .stopping?: return "SPFS service stopping"
        case .stopped?: return "SPFS service stopped"
        case .unresponsive?: return "SPFS service not responding"
        case .conflict? where service?.pid != nil:
            return "SPFS service running at another address"
        case .conflict?: return "SPFS service address in use by another program"
        case nil: return "SPFS service status unknown"
        }
    }

    /// One line per active mount, listed under the state line: "rt-1 (pid 42, editable): spec".
    public var mountLines: [String] {
        (service?.mounts ?? []).map { mount in
            let name = mount.runtimeName.isEmpty ? "pid \(mount.rootPid)" : mount.runtimeName
            let how = mount.editable ? "editable" : "read-only"
            let pid = mount.runtimeName.isEmpty ? how : "pid \(mount.rootPid), \(how)"
            return "\(name) (\(pid)): \(mount.envSpec)"
        }
    }

    /// Label/value rows for the details section (pid, uptime, leases, idle exit, ...).
    public var detailRows: [DetailRow] {
        guard let service else { return [] }
        var rows: [DetailRow] = []
        if let pid = service.pid { rows.append(DetailRow("PID", String(pid))) }
        if let version = service.version { rows.append(DetailRow("Version", version)) }
        if let uptime = service.uptimeSecs {
            rows.append(DetailRow("Uptime", formatDuration(uptime)))
        }
        if !service.endpoint.isEmpty { rows.append(DetailRow("Endpoint", service.endpoint)) }
        // Leases only as a kit service tells them (a running one tells its idle exit too):
        // spfs-fuse-macos as upstream ships it has none, and "none" would say it could.
        if service.idleExit != nil || !service.leases.isEmpty {
            rows.append(DetailRow("Leases", leaseSummary(service.leases)))
        }
        if let idleExit = service.idleExit {
            rows.append(DetailRow("Idle exit", idleExitText(idleExit)))
        }
        if let detail = service.detail, !detail.isEmpty {
            rows.append(DetailRow("Detail", detail))
        }
        for warning in service.warnings { rows.append(DetailRow("Warning", warning)) }
        return rows
    }

}

/// "45s", "12m 5s", "3h 20m", "2d 4h".
public func formatDuration(_ seconds: UInt64) -> String {
    let minute: UInt64 = 60
    let hour = 60 * minute
    let day = 24 * hour
    switch seconds {
    case ..<minute:
        return "\(seconds)s"
    case ..<hour:
        return "\(seconds / minute)m \(seconds % minute)s"
    case ..<day:
        return "\(seconds / hour)h \((seconds % hour) / minute)m"
    default:
        return "\(seconds / day)d \((seconds % day) / hour)h"
    }
}

/// "in 2m 5s", or why the service will not exit for idleness yet.
func idleExitText(_ idleExit: ServiceIdleExit) -> String {
    switch idleExit {
    case .after(let secs): return "in \(formatDuration(secs))"
    case .never: return "never (idle timeout 0)"
    case .notWhileLeased: return "not while leases are held"
    case .notWhileBusy: return "not while a call is in flight"
    }
}

func leaseSummary(_ leases: [ServiceLease]) -> String {
    if leases.isEmpty { return "none" }
    let labels = leases.map { "\($0.label) (pid \($0.pid))" }
    return "\(leases.count): " + labels.joined(separator: ", ")
}
