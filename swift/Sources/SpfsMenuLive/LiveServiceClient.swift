import Foundation
import SpfsAutostart
import SpfsMenuCore

// The one place that maps the generated uniffi API (ServiceManager, ServiceStatus,
// ServiceState, Lease, StopOutcome, ServiceError, ErrorKind, Remedy, Operation, ServiceConfig)
// to the model's own types, and gives each error kind and each remedy its words. When the
// generated names change, this file is the one to change.

/// `ServiceClient` over the Rust library's `ServiceManager`.
@MainActor
public final class LiveServiceClient: ServiceClient {
    private let manager: ServiceManager

    public init(manager: ServiceManager) {
        self.manager = manager
    }

    /// A client with the library's defaults (config file, environment), or the reason there
    /// is none (for example an invalid configuration file).
    public static func makeDefault() -> Result<LiveServiceClient, ServiceFailure> {
        do {
            return .success(LiveServiceClient(manager: try ServiceManager.withDefaults()))
        } catch {
            return .failure(Self.failure(error))
        }
    }

    /// A client over an explicit configuration; nil fields take the library's defaults.
    public static func make(
        program: String? = nil,
        args: [String]? = nil,
        endpoint: String? = nil,
        stateDir: String? = nil,
        logDir: String? = nil,
        readyTimeoutSecs: UInt64? = nil,
        stopTimeoutSecs: UInt64? = nil,
        idleTimeoutSecs: UInt64? = nil
    ) throws -> LiveServiceClient {
        let config = ServiceConfig(
            configFile: nil,
            program: program,
            args: args,
            endpoint: endpoint,
            stateDir: stateDir,
            logDir: logDir,
            readyTimeoutSecs: readyTimeoutSecs,
            stopTimeoutSecs: stopTimeoutSecs,
            idleTimeoutSecs: idleTimeoutSecs,
            expectedVersion: nil
        )
        do {
            return LiveServiceClient(manager: try ServiceManager(config: config))
        } catch {
            throw Self.failure(error)
        }
    }

    public func ensure() async throws -> ServiceSnapshot {
        do {
            return Self.snapshot(try await manager.ensure())
        } catch {
            throw Self.failure(error)
        }
    }

    public func stop() async throws -> StopResult {
        do {
            // `how` is nil exactly when nothing was running.
            switch try await manager.stopReport().how {
            case nil: return .notRunning
            case .graceful?: return .stopped(.graceful)
            case .terminated?: return .stopped(.terminated)
            case .killed?: return .stopped(.killed)
            }
        } catch {
            throw Self.failure(error)
        }
    }

    public func status() async throws -> ServiceSnapshot {
        do {
            return Self.snapshot(try await manager.status())
        } catch {
            throw Self.failure(error)
        }
    }

    public func diagnose() async throws -> DiagnosisReport {
        do {
            let report = try await manager.doctor()
            return DiagnosisReport(
                findings: report.findings.map { finding in
                    DiagnosisFinding(
                        check: finding.check,
                        severity: Self.severity(finding.severity),
                        message: finding.message,
                        fix: finding.fix,
                        hints: Self.hints(finding.remedies)
                    )
                },
                next: report.next,
                healthy: report.healthy
            )
        } catch {
            throw Self.failure(error)
        }
    }

    nonisolated static func severity(_ severity: DoctorSeverity) -> DiagnosisSeverity {
        switch severity {
        case .ok: return .ok
        case .warning: return .warning
        case .problem: return .problem
        }
    }

    public func tailLogs(_ count: Int) throws -> [String] {
        do {
            return try manager.tailLogs(n: UInt32(clamping: max(0, count)))
        } catch {
            throw Self.failure(error)
        }
    }

    public var logFile: String { manager.logFile() }

    public func watch() -> AsyncStream<ServiceSnapshot> {
        let statuses = manager.statusUpdates()
        return AsyncStream(ServiceSnapshot.self, bufferingPolicy: .bufferingNewest(16)) {
            continuation in
            let task = Task {
                for await status in statuses {
                    continuation.yield(Self.snapshot(status))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: Conversions

    nonisolated static func snapshot(_ status: ServiceStatus) -> ServiceSnapshot {
        ServiceSnapshot(
            state: stateKind(status.state),
            pid: status.pid,
            version: status.version,
            endpoint: status.endpoint,
            uptimeSecs: status.uptimeSecs,
            logFile: status.logFile,
            leases: status.leases.map { ServiceLease(id: $0.id, pid: $0.pid, label: $0.label) },
            mounts: status.mounts.map {
                ServiceMount(
                    runtimeName: $0.runtimeName, rootPid: $0.rootPid, editable: $0.editable,
                    envSpec: $0.envSpec)
            },
            users: status.users,
            idleExit: status.idleExit.map(idleExit),
            warnings: status.warnings,
            detail: status.detail
        )
    }

    nonisolated static func idleExit(_ idleExit: IdleExit) -> ServiceIdleExit {
        switch idleExit {
        case .after(let secs): return .after(secs: secs)
        case .never: return .never
        case .notWhileLeased: return .notWhileLeased
        case .notWhileBusy: return .notWhileBusy
        }
    }

    nonisolated static func stateKind(_ state: ServiceState) -> ServiceStateKind {
        switch state {
        case .running: return .running
        case .starting: return .starting
        case .stopping: return .stopping
        case .stopped: return .stopped
        case .unresponsive: return .unresponsive
        case .conflict: return .conflict
        }
    }

    /// The library's error as the model's failure: its kind and its remedies in the app's
    /// words, the rest as it is.
    nonisolated static func failure(_ error: any Error) -> ServiceFailure {
        guard let error = error as? ServiceError,
            case let .Failed(kind, message, remedies, logFile, logTail) = error
        else { return ServiceFailure.from(error) }
        return ServiceFailure(
            title: kind.title, message: message, hints: hints(remedies), logFile: logFile,
            logTail: logTail)
    }

    /// Each remedy's hint, in order, without repeats (two remedies may have the same words).
    nonisolated static func hints(_ remedies: [Remedy]) -> [String] {
        var hints: [String] = []
        for hint in remedies.map(\.hint) where !hints.contains(hint) {
            hints.append(hint)
        }
        return hints
    }
}

extension Remedy {
    /// What the user does in this app to apply the remedy. The only words Swift adds to the
    /// library's remedies: the library names config keys and operations, and the app says
    /// which menu item or toggle does it (it has no settings for config keys, so those name
    /// the config file's key). The switch is exhaustive, so a new operation or remedy does not
    /// compile until it has its words here. (`Operation` is matched, never named: the name is
    /// also Foundation's.)
    public var hint: String {
        switch self {
        case .setKey(key: "ready_timeout_secs"):
            return "Raise the start timeout in the config file (ready_timeout_secs)"
        case .setKey(key: "stop_timeout_secs"):
            return "Raise the stop timeout in the config file (stop_timeout_secs)"
        case let .setKey(key):
            return "Change \(key) in the config file"
        case .configFile:
            return "Fix the config file, then choose Refresh in the menu"
        case .run(operation: .ensure):
            return "Choose Start in the menu"
        case .run(operation: .stop):
            return "Choose Stop in the menu"
        case .run(operation: .status):
            return "Choose Refresh in the menu"
        case .run(operation: .doctor):
            return "Choose Diagnose... in the menu"
        // The agent operations act on the command-line tool's LaunchAgent, not on the app's
        // own (Keep service running has a label of its own): turning the app's on beside it
        // would start a second agent that races it for the endpoint.
        case .run(operation: .agentInstall), .run(operation: .agentInstallAlways):
            return "Install the command-line tool's LaunchAgent (ai.spk.spfs-fuse-macos) again"
        case .run(operation: .agentUninstall):
            return "Uninstall the command-line tool's LaunchAgent (ai.spk.spfs-fuse-macos)"
        case .run(operation: .agentStatus):
            return "Check the command-line tool's LaunchAgent (ai.spk.spfs-fuse-macos)"
        case .run(operation: .agentInstallSocket):
            return "Install the command-line tool's socket-activated LaunchAgent again"
        case .run(operation: .agentPrintSystemd), .run(operation: .agentPrintSystemdSocket):
            return "Run the service from a systemd user unit (this app manages only the LaunchAgent)"
        }
    }
}

extension ErrorKind {
    /// A short headline for the kind, shown above the message. The only words Swift adds to
    /// the library's error kinds; the switch is exhaustive, so a new kind does not compile
    /// until it has its words here.
    public var title: String {
        switch self {
        case .binaryNotFound: return "SPFS service program not found"
        case .spawnFailed: return "Could not start the SPFS service"
        case .exitedDuringStartup: return "The SPFS service exited while starting"
        case .readyTimeout: return "The SPFS service did not become ready in time"
        case .unresponsive: return "The SPFS service is not responding"
        case .endpointConflict: return "Another program is using the SPFS service address"
        case .permissionDenied: return "Permission denied"
        case .versionMismatch: return "The SPFS service has the wrong version"
        case .invalidConfig: return "The spfs-autostart configuration is invalid"
        case .unsupported: return "Not supported on this system"
        case .io: return "Input/output error"
        case .internal: return "Internal error"
        case .launchctlFailed: return "launchctl could not manage the SPFS service"
        case .invalidArgument: return "The SPFS service refused the request"
        }
    }
}
