import Foundation

// The environment the model runs in. Every effect goes through one of these protocols, so
// tests drive the model with fakes and the app injects the live clients. They are all
// main-actor isolated: the model is, and the live implementations either are cheap or
// suspend (`async`) rather than block.

/// The service library, as the model needs it.
@MainActor
public protocol ServiceClient: AnyObject {
    /// Starts the service if needed and waits until it is ready.
    func ensure() async throws -> ServiceSnapshot
    /// Stops the service; never starts anything.
    func stop() async throws -> StopResult
    /// Reports the service's state; never starts anything.
    func status() async throws -> ServiceSnapshot
    /// Checks everything a user would otherwise debug by hand (`spfs-autostart doctor`);
    /// only looks, never starts or stops anything.
    func diagnose() async throws -> DiagnosisReport
    /// The last `count` lines of the service log (works when the service is dead).
    func tailLogs(_ count: Int) throws -> [String]
    /// The log file's path, even before the service ever ran.
    var logFile: String { get }
    /// Status changes, pushed by the library. The stream ends if watching fails; cancelling
    /// the iterating task stops the watch.
    func watch() -> AsyncStream<ServiceSnapshot>
}

/// Registration state of an `SMAppService`-like login item or agent.
public enum LoginItemStatus: Sendable, Equatable {
    case notRegistered
    case enabled
    /// Registered, but the user must allow it in System Settings > General > Login Items.
    case requiresApproval
    /// The system cannot find the item (for example the app is not in an .app bundle).
    case notFound

    /// Whether a toggle over this item shows "on": registered, approved or not yet.
    public var isOn: Bool {
        switch self {
        case .enabled, .requiresApproval: return true
        case .notRegistered, .notFound: return false
        }
    }
}

/// Launch at login (the app) or keep-running (the bundled LaunchAgent).
@MainActor
public protocol LaunchAtLoginClient: AnyObject {
    /// Whether this build has the item to register: the app always; the bundled agent only
    /// when `build-app.sh --service-binary` put its plist in the bundle. (`status()` cannot
    /// tell: macOS may say `notFound` of an item it has never registered.)
    var isInBundle: Bool { get }
    func status() -> LoginItemStatus
    func register() throws
    func unregister() throws
    /// Opens System Settings at Login Items, where the user approves or removes items.
    func openSettings()
}

/// Posts user notifications. Implementations decide whether they can (authorization, bundle).
@MainActor
public protocol Notifier: AnyObject {
    func post(title: String, body: String)
}

/// Opens the service log for the user.
@MainActor
public protocol LogOpener: AnyObject {
    /// Opens the file in the default viewer; returns false when it could not.
    func open(path: String) -> Bool
    /// Shows the file in the file manager.
    func reveal(path: String)
}

/// Time, injected so that tests control it. (Not named `Clock`, which the standard library
/// already uses for a different protocol.)
@MainActor
public protocol AppClock: AnyObject {
    func now() -> Date
    /// Waits; returns early (without throwing) when the task is cancelled.
    func sleep(seconds: Double) async
}

/// The real clock.
@MainActor
public final class SystemClock: AppClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(seconds: Double) async {
        let nanoseconds = UInt64(max(0, seconds) * 1_000_000_000)
        try? await Task.sleep(nanoseconds: nanoseconds)
    }
}

/// A service client that fails every call with one error: used when the live client cannot
/// be built (for example an invalid configuration file), so the menu shows why.
@MainActor
public final class UnavailableServiceClient: ServiceClient {
    private let failure: ServiceFailure

    public init(failure: ServiceFailure) {
        self.failure = failure
    }

    public func ensure() async throws -> ServiceSnapshot { throw failure }
    public func stop() async throws -> StopResult { throw failure }
    public func status() async throws -> ServiceSnapshot { throw failure }
    /// The one thing to report: why there is no service client (as `spfs-autostart doctor`
    /// reports an unusable config), not an error instead of the report.
    public func diagnose() async throws -> DiagnosisReport {
        DiagnosisReport(
            findings: [
                DiagnosisFinding(
                    check: "config", severity: .problem,
                    message: "\(failure.title): \(failure.message)", hints: failure.hints)
            ],
            next: "fail: the config cannot be used (see above)",
            healthy: false
        )
    }
    public func tailLogs(_ count: Int) throws -> [String] { throw failure }
    public var logFile: String { failure.logFile ?? "" }

    public func watch() -> AsyncStream<ServiceSnapshot> {
        AsyncStream { continuation in continuation.finish() }
    }
}
