import Foundation
import SpfsAutostart
import SpfsMenuCore

// The one place that maps the generated uniffi API (ServiceManager, ServiceStatus,
// ServiceState, Lease, StopOutcome, ServiceError, ServiceConfig) to the model's own types.
// When the generated names change, this file is the one to change.

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
            switch try await manager.stop() {
            case .stopped: return .stopped
            case .notRunning: return .notRunning
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
                        fix: finding.fix
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
            idleExitInSecs: status.idleExitInSecs,
            warnings: status.warnings,
            detail: status.detail
        )
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

    /// Maps the library's error enum, once, to the model's failure.
    nonisolated static func failure(_ error: any Error) -> ServiceFailure {
        guard let error = error as? ServiceError else { return ServiceFailure.from(error) }
        switch error {
        case let .BinaryNotFound(message, logFile, logTail):
            return ServiceFailure(
                kind: .binaryNotFound, message: message, logFile: logFile, logTail: logTail)
        case let .SpawnFailed(message, logFile, logTail):
            return ServiceFailure(
                kind: .spawnFailed, message: message, logFile: logFile, logTail: logTail)
        case let .ExitedDuringStartup(message, logFile, logTail):
            return ServiceFailure(
                kind: .exitedDuringStartup, message: message, logFile: logFile, logTail: logTail)
        case let .ReadyTimeout(message, logFile, logTail):
            return ServiceFailure(
                kind: .readyTimeout, message: message, logFile: logFile, logTail: logTail)
        case let .Unresponsive(message, logFile, logTail):
            return ServiceFailure(
                kind: .unresponsive, message: message, logFile: logFile, logTail: logTail)
        case let .EndpointConflict(message, logFile, logTail):
            return ServiceFailure(
                kind: .endpointConflict, message: message, logFile: logFile, logTail: logTail)
        case let .PermissionDenied(message, logFile, logTail):
            return ServiceFailure(
                kind: .permissionDenied, message: message, logFile: logFile, logTail: logTail)
        case let .VersionMismatch(message, logFile, logTail):
            return ServiceFailure(
                kind: .versionMismatch, message: message, logFile: logFile, logTail: logTail)
        case let .InvalidConfig(message, logFile, logTail):
            return ServiceFailure(
                kind: .invalidConfig, message: message, logFile: logFile, logTail: logTail)
        case let .Unsupported(message, logFile, logTail):
            return ServiceFailure(
                kind: .unsupported, message: message, logFile: logFile, logTail: logTail)
        case let .Io(message, logFile, logTail):
            return ServiceFailure(
                kind: .io, message: message, logFile: logFile, logTail: logTail)
        case let .LaunchctlFailed(message, logFile, logTail):
            // Only `agent install` runs launchctl; the app never calls it.
            return ServiceFailure(
                kind: .spawnFailed, message: message, logFile: logFile, logTail: logTail)
        case let .Internal(message, logFile, logTail):
            return ServiceFailure(
                kind: .internal, message: message, logFile: logFile, logTail: logTail)
        }
    }
}
