import Foundation
import XCTest

@testable import SpfsAutostart
@testable import SpfsMenuLive
import SpfsMenuCore

/// The Swift bindings against the real library and `spfs-reference-service`.
/// Needs `cargo build -p spfs-autostart-ffi -p spfs-reference-service` first
/// (`scripts/test-swift` does that and runs these).
///
/// `@unchecked Sendable`: XCTest's test discovery on Linux hands the test case to its
/// main-actor tests from a nonisolated context. That is safe because the class holds only
/// constants.
final class ServiceManagerTests: XCTestCase, @unchecked Sendable {
    /// The package root, from this file's path (swift/Tests/SpfsAutostartTests/<file>).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `SPFS_REFERENCE_SERVICE`, else the debug build in this clone.
    static var referenceService: String {
        ProcessInfo.processInfo.environment["SPFS_REFERENCE_SERVICE"]
            ?? packageRoot.appendingPathComponent("target/debug/spfs-reference-service").path
    }

    struct MissingReferenceService: Error, CustomStringConvertible {
        var description: String {
            "\(ServiceManagerTests.referenceService) is missing: "
                + "cargo build -p spfs-autostart-ffi -p spfs-reference-service"
        }
    }

    /// This test's own directory (XCTest makes one instance per test method). Short, under
    /// /tmp: the state dir holds a Unix socket (104/108-byte path limit).
    private let tempDir = URL(fileURLWithPath: "/tmp")
        .appendingPathComponent("spfs-swift-\(UUID().uuidString.prefix(8))")

    override func setUpWithError() throws {
        // A failure, not a skip: these are the tests of the real library.
        guard FileManager.default.isExecutableFile(atPath: Self.referenceService) else {
            throw MissingReferenceService()
        }
        try FileManager.default.createDirectory(
            at: tempDir, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        // An empty config file of its own: the user's (SPFS_AUTOSTART_CONFIG, or the per-user
        // file) must not steer the test.
        try Data().write(to: configFile)
    }

    /// The test's config file, empty: every setting is in `makeConfig`.
    private var configFile: URL { tempDir.appendingPathComponent("config.toml") }

    override func tearDown() async throws {
        // Whatever a failed test left running in its state dir is stopped (idle exit is off),
        // then the directory goes.
        if let manager = try? ServiceManager(config: makeConfig()) {
            do {
                _ = try await manager.stop()
            } catch {
                // A stop that failed leaves nothing running either.
                if let pid = try? await manager.status().pid {
                    kill(pid_t(pid), SIGKILL)
                }
            }
        }
        try? FileManager.default.removeItem(at: tempDir)
    }

    /// What `body` gives, or nil when it takes longer than `seconds`: a stream raced against a
    /// deadline, so that a missing event fails the test instead of hanging it.
    private func within<T: Sendable>(
        seconds: UInt64, _ body: @escaping @Sendable () async -> T
    ) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(nanoseconds: seconds * 1_000_000_000)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    private func makeConfig(program: String? = nil) -> ServiceConfig {
        ServiceConfig(
            configFile: configFile.path,
            program: program ?? Self.referenceService,
            // Explicit: the defaults are for spfs-fuse-macos on macOS (TCP, `service /spfs`).
            args: [],
            endpoint: "unix",
            stateDir: tempDir.appendingPathComponent("state").path,
            logDir: tempDir.appendingPathComponent("logs").path,
            readyTimeoutSecs: 10,
            stopTimeoutSecs: 5,
            idleTimeoutSecs: 0,
            expectedVersion: nil
        )
    }

    func testVersionIsNotEmpty() {
        XCTAssertFalse(version().isEmpty)
    }

    func testEnsureStatusStop() async throws {
        let manager = try ServiceManager(config: makeConfig())
        let before = try await manager.status()
        XCTAssertEqual(before.state, .stopped)

        let ensured = try await manager.ensure()
        XCTAssertEqual(ensured.state, .running)
        XCTAssertNotNil(ensured.pid)
        XCTAssertTrue(ensured.logFile.contains(tempDir.lastPathComponent), ensured.logFile)

        let again = try await manager.ensure()
        XCTAssertEqual(again.pid, ensured.pid, "a second ensure must not start a second service")

        let running = try await manager.status()
        XCTAssertEqual(running.state, .running)

        let outcome = try await manager.stop()
        XCTAssertEqual(outcome, .stopped)
        let after = try await manager.status()
        XCTAssertEqual(after.state, .stopped)

        let second = try await manager.stop()
        XCTAssertEqual(second, .notRunning)
    }

    func testMissingProgramIsBinaryNotFound() async throws {
        let manager = try ServiceManager(
            config: makeConfig(program: tempDir.appendingPathComponent("no-such-program").path))
        do {
            _ = try await manager.ensure()
            XCTFail("ensure must fail for a missing program")
        } catch let error as ServiceError {
            guard case let .Failed(kind, message, _, _, _) = error, kind == .binaryNotFound else {
                return XCTFail("expected a binaryNotFound failure, got \(error)")
            }
            XCTAssertTrue(message.contains("no-such-program"), message)
            let failure = LiveServiceClient.failure(error)
            XCTAssertEqual(failure.title, ErrorKind.binaryNotFound.title)
            XCTAssertEqual(failure.message, message)
            // The library names the key to change; the app says it in its words.
            XCTAssertEqual(failure.hints, ["Change program in the config file"])
        }
    }

    func testEveryErrorKindHasItsOwnWords() {
        var kindsByTitle: [String: ErrorKind] = [:]
        for kind in ErrorKind.allCases {
            XCTAssertFalse(kind.title.isEmpty, "\(kind)")
            if let other = kindsByTitle.updateValue(kind, forKey: kind.title) {
                XCTFail("\(kind) and \(other) have the same title: \(kind.title)")
            }
            let failure = LiveServiceClient.failure(
                ServiceError.Failed(
                    kind: kind, message: "message for \(kind)", remedies: [],
                    logFile: "/tmp/x.log", logTail: ["tail"]))
            XCTAssertEqual(
                failure,
                ServiceFailure(
                    title: kind.title, message: "message for \(kind)", logFile: "/tmp/x.log",
                    logTail: ["tail"]))
        }
    }

    func testRemediesBecomeTheAppsHintsInOrderWithoutRepeats() {
        let failure = LiveServiceClient.failure(
            ServiceError.Failed(
                kind: .readyTimeout, message: "not ready",
                remedies: [
                    .setKey(key: "ready_timeout_secs"), .run(operation: .agentInstall),
                    .run(operation: .agentInstallAlways), .run(operation: .stop),
                ],
                logFile: nil, logTail: []))
        XCTAssertEqual(
            failure.hints,
            [
                "Raise the start timeout in the config file (ready_timeout_secs)",
                "Install the command-line tool's LaunchAgent (ai.spk.spfs-fuse-macos) again",
                "Choose Stop in the menu",
            ])
    }

    func testEveryRemedyHasAppWordsAndNoCliFlag() {
        let remedies: [Remedy] =
            [.setKey(key: "ready_timeout_secs"), .setKey(key: "state_dir"), .configFile]
            + allCases(of: Remedy.run(operation:)).map(Remedy.run(operation:))
        for remedy in remedies {
            let hint = remedy.hint
            XCTAssertFalse(hint.isEmpty, "\(remedy)")
            XCTAssertFalse(hint.contains("--"), "a CLI flag in \(remedy): \(hint)")
            XCTAssertFalse(hint.contains("spfs-autostart "), "a CLI command in \(remedy): \(hint)")
            XCTAssertFalse(hint.contains("`"), "a command line in \(remedy): \(hint)")
        }
        XCTAssertEqual(Remedy.run(operation: .doctor).hint, "Choose Diagnose... in the menu")
        XCTAssertEqual(Remedy.run(operation: .ensure).hint, "Choose Start in the menu")
        XCTAssertEqual(Remedy.setKey(key: "state_dir").hint, "Change state_dir in the config file")
    }

    /// Every value of the enum `make` takes: the generated `Operation` without naming it, as
    /// Foundation has an `Operation` too.
    private func allCases<T: CaseIterable>(of make: (T) -> Remedy) -> T.AllCases {
        T.allCases
    }

    func testAnErrorFromElsewhereIsUnexpected() {
        struct Elsewhere: Error {}
        let failure = LiveServiceClient.failure(Elsewhere())
        XCTAssertEqual(failure.title, ServiceFailure.unexpectedTitle)
        XCTAssertFalse(failure.message.isEmpty)
    }

    func testStatusUpdatesStreamSeesTheServiceStart() async throws {
        let manager = try ServiceManager(config: makeConfig())
        let updates = manager.statusUpdates()
        _ = try await manager.ensure()
        let sawRunning = await within(seconds: 10) {
            for await status in updates where status.state == .running {
                return true
            }
            return false
        }
        XCTAssertEqual(sawRunning, true, "no running status within 10 s")
        _ = try await manager.stop()
    }

    /// `logEvents(backlog:)` gives the log's last lines, then a line appended afterwards.
    func testLogEventsGiveTheBacklogThenNewLines() async throws {
        let manager = try ServiceManager(config: makeConfig())
        _ = try await manager.ensure()
        let before = try manager.tailLogs(n: 2)
        XCTAssertEqual(before.count, 2, "\(before)")
        let events = manager.logEvents(backlog: 2)
        let marker = "appended by the Swift test \(UUID().uuidString)"
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: manager.logFile()))
        try log.seekToEnd()
        try log.write(contentsOf: Data((marker + "\n").utf8))
        try log.close()
        let seen = await within(seconds: 20) {
            var lines: [String] = []
            for await event in events {
                guard case .line(let line) = event else { continue }
                lines.append(line)
                if line == marker { break }
            }
            return lines
        }
        XCTAssertEqual(seen, before + [marker], "the backlog, then the new line, once each")
        _ = try await manager.stop()
    }

    /// A stream the feed ended before its handle was held (from the feed's first call) still
    /// cancels that feed once it is held; one that ends later cancels it then, once.
    func testAFeedIsCancelledWhicheverOfHoldAndEndComesFirst() {
        final class Counting: FeedCancellable, @unchecked Sendable {
            private let lock = NSLock()
            private var count = 0
            var cancels: Int { lock.lock(); defer { lock.unlock() }; return count }
            func cancel() { lock.lock(); count += 1; lock.unlock() }
        }
        let endedFirst = FeedHandleBox()
        let early = Counting()
        endedFirst.terminate()
        endedFirst.hold(early)
        XCTAssertEqual(early.cancels, 1, "a feed whose stream had ended was left running")

        let heldFirst = FeedHandleBox()
        let late = Counting()
        heldFirst.hold(late)
        XCTAssertEqual(late.cancels, 0, "cancelled while its stream was still open")
        heldFirst.terminate()
        heldFirst.terminate()
        XCTAssertEqual(late.cancels, 1)
    }

    func testTailLogsWorksWhenStopped() throws {
        let manager = try ServiceManager(config: makeConfig())
        XCTAssertNoThrow(try manager.tailLogs(n: 10))
        XCTAssertFalse(manager.logFile().isEmpty)
    }

    /// The app's live client over this test's own dirs.
    @MainActor
    private func makeLiveClient(program: String) throws -> LiveServiceClient {
        try LiveServiceClient.make(
            program: program,
            args: [],
            endpoint: "unix",
            stateDir: tempDir.appendingPathComponent("state").path,
            logDir: tempDir.appendingPathComponent("logs").path,
            readyTimeoutSecs: 10, stopTimeoutSecs: 5, idleTimeoutSecs: 0)
    }

    @MainActor
    func testLiveClientMapsStatus() async throws {
        let client = try makeLiveClient(program: Self.referenceService)
        let snapshot = try await client.ensure()
        XCTAssertEqual(snapshot.state, .running)
        XCTAssertNotNil(snapshot.pid)
        XCTAssertEqual(snapshot.idleExit, .never, "idleTimeoutSecs 0")
        let stopped = try await client.stop()
        XCTAssertEqual(stopped, .stopped(.graceful), "a kit service shuts down when asked")
        let again = try await client.stop()
        XCTAssertEqual(again, .notRunning)
    }

    @MainActor
    func testDiagnosisFindingsCarryTheAppsHints() async throws {
        let client = try makeLiveClient(
            program: tempDir.appendingPathComponent("no-such-program").path)
        let report = try await client.diagnose()
        XCTAssertFalse(report.healthy)
        let program = report.findings.first { $0.check == "program" }
        XCTAssertEqual(program?.severity, .problem)
        XCTAssertEqual(program?.hints, ["Change program in the config file"])
        XCTAssertTrue(
            report.lines.contains("    Change program in the config file"), "\(report.lines)")
        // A healthy finding has nothing to do.
        let config = report.findings.first { $0.check == "config" }
        XCTAssertEqual(config?.hints, [])
    }
}
