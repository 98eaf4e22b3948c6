import Foundation
import SpfsMenuCore

/// A scripted service: each call pops the next result, or repeats the default.
@MainActor
final class FakeService: ServiceClient {
    var ensureResults: [Result<ServiceSnapshot, ServiceFailure>] = []
    var stopResults: [Result<StopResult, ServiceFailure>] = []
    var statusResult: Result<ServiceSnapshot, ServiceFailure> = .success(.stopped)
    var logLines: [String] = ["line 1", "line 2", "line 3", "line 4"]
    var logFile = "/tmp/spfs-autostart-test/service.log"

    var diagnoseResult: Result<DiagnosisReport, ServiceFailure> = .success(
        DiagnosisReport(
            findings: [DiagnosisFinding(check: "program", severity: .ok, message: "found")],
            next: "start it",
            healthy: true
        )
    )
    private(set) var diagnoseCalls = 0
    private(set) var ensureCalls = 0
    private(set) var stopCalls = 0
    private(set) var statusCalls = 0
    private(set) var watchCalls = 0
    private(set) var watchContinuations: [AsyncStream<ServiceSnapshot>.Continuation] = []
    /// Runs inside `stop()`, before it returns: lets a test push watch events mid-stop.
    var duringStop: (@MainActor () -> Void)?
    /// How often `stop()` yields the main actor before returning (to let other tasks run).
    var stopYields = 0
    /// What `status()` answers after a successful stop (the service is stopped).
    var statusAfterStop: Result<ServiceSnapshot, ServiceFailure> = .success(.stopped)
    /// What `status()` answers after a successful `ensure` that returned the snapshot given:
    /// by default that snapshot without its warnings, which were the start's to say.
    var statusAfterEnsure: ((ServiceSnapshot) -> ServiceSnapshot)?

    func ensure() async throws -> ServiceSnapshot {
        ensureCalls += 1
        let result: Result<ServiceSnapshot, ServiceFailure> =
            ensureResults.isEmpty ? .success(.idle) : ensureResults.removeFirst()
        if case .success(let snapshot) = result {
            var looked = snapshot
            looked.warnings = []
            statusResult = .success(statusAfterEnsure?(snapshot) ?? looked)
        }
        return try result.get()
    }

    func stop() async throws -> StopResult {
        stopCalls += 1
        duringStop?()
        for _ in 0..<stopYields { await Task.yield() }
        let result: Result<StopResult, ServiceFailure> =
            stopResults.isEmpty ? .success(.stopped(.graceful)) : stopResults.removeFirst()
        if case .success = result { statusResult = statusAfterStop }
        return try result.get()
    }

    func status() async throws -> ServiceSnapshot {
        statusCalls += 1
        return try statusResult.get()
    }

    func diagnose() async throws -> DiagnosisReport {
        diagnoseCalls += 1
        return try diagnoseResult.get()
    }

    func tailLogs(_ count: Int) throws -> [String] {
        Array(logLines.suffix(count))
    }

    func watch() -> AsyncStream<ServiceSnapshot> {
        watchCalls += 1
        let (stream, continuation) = AsyncStream.makeStream(of: ServiceSnapshot.self)
        watchContinuations.append(continuation)
        return stream
    }
}

@MainActor
final class FakeLoginItem: LaunchAtLoginClient {
    var isInBundle = true
    var current: LoginItemStatus
    /// The status `register()` leads to (macOS may answer `.requiresApproval`).
    var afterRegister: LoginItemStatus = .enabled
    var registerError: (any Error)?
    var unregisterError: (any Error)?
    private(set) var registerCalls = 0
    private(set) var unregisterCalls = 0
    private(set) var openSettingsCalls = 0

    init(_ current: LoginItemStatus = .notRegistered) {
        self.current = current
    }

    func status() -> LoginItemStatus { current }

    func register() throws {
        registerCalls += 1
        if let registerError { throw registerError }
        current = afterRegister
    }

    func unregister() throws {
        unregisterCalls += 1
        if let unregisterError { throw unregisterError }
        current = .notRegistered
    }

    func openSettings() { openSettingsCalls += 1 }
}

@MainActor
final class FakeNotifier: Notifier {
    private(set) var posted: [(title: String, body: String)] = []
    func post(title: String, body: String) { posted.append((title: title, body: body)) }
}

@MainActor
final class FakeClock: AppClock {
    var current = Date(timeIntervalSince1970: 1_000_000)
    private(set) var sleeps: [Double] = []

    func now() -> Date { current }

    func sleep(seconds: Double) async {
        sleeps.append(seconds)
        await Task.yield()
    }

    func advance(_ seconds: Double) { current = current.addingTimeInterval(seconds) }
}

@MainActor
final class FakeLogOpener: LogOpener {
    var openSucceeds = true
    private(set) var opened: [String] = []
    private(set) var revealed: [String] = []

    func open(path: String) -> Bool {
        opened.append(path)
        return openSucceeds
    }

    func reveal(path: String) { revealed.append(path) }
}

struct TestError: Error, LocalizedError {
    var errorDescription: String? { "The operation failed for the test." }
}

extension ServiceSnapshot {
    static let stopped = ServiceSnapshot(state: .stopped, logFile: "/tmp/spfs-autostart-test/service.log")
    /// The running service (pid 4242), no longer answering.
    static let hung = ServiceSnapshot(
        state: .unresponsive, pid: 4242, endpoint: "unix:///tmp/s.sock",
        logFile: "/tmp/spfs-autostart-test/service.log",
        detail: "it accepts connections but does not answer gRPC; the process is suspended")
    static let running = ServiceSnapshot(
        state: .running, pid: 4242, version: "0.1.0", endpoint: "unix:///tmp/s.sock",
        uptimeSecs: 3725, logFile: "/tmp/spfs-autostart-test/service.log",
        leases: [ServiceLease(id: 1, pid: 77, label: "spfs shell")],
        users: ["spfs shell (pid 77)"], idleExit: .notWhileLeased)
    /// Running, and used by nobody: Stop stops it at once.
    static var idle: ServiceSnapshot {
        var snapshot = running
        snapshot.leases = []
        snapshot.users = []
        snapshot.idleExit = .after(secs: 1800)
        return snapshot
    }
    static let stopping = ServiceSnapshot(state: .stopping, pid: 4242)
    /// Running, and up for a second only (as in a crash loop).
    static var justStarted: ServiceSnapshot {
        var snapshot = running
        snapshot.uptimeSecs = 1
        return snapshot
    }
}

/// A model over fresh fakes.
@MainActor
struct Harness {
    let service: FakeService
    let launchAtLogin: FakeLoginItem
    let keepRunning: FakeLoginItem
    let notifier: FakeNotifier
    let clock: FakeClock
    let logOpener: FakeLogOpener
    let model: MenuModel

    init() {
        service = FakeService()
        launchAtLogin = FakeLoginItem()
        keepRunning = FakeLoginItem()
        notifier = FakeNotifier()
        clock = FakeClock()
        logOpener = FakeLogOpener()
        model = MenuModel(
            service: service, launchAtLogin: launchAtLogin, keepRunning: keepRunning,
            notifier: notifier, clock: clock, logOpener: logOpener, logLineCount: 3,
            watchRetryDelays: [1, 2, 4])
    }

    /// Starts the app while launchd runs the service (Keep service running, approved), which
    /// answers as `.idle`.
    func activateWhileLaunchdRunsTheService() async {
        keepRunning.current = .enabled
        service.statusResult = .success(.idle)
        await model.activate()
    }

    /// Lets the model's watch task run until `condition` holds (or fails after many turns).
    func settle(until condition: () -> Bool) async -> Bool {
        for _ in 0..<1000 {
            if condition() { return true }
            await Task.yield()
        }
        return condition()
    }
}
