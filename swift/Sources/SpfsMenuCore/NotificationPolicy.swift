import Foundation

/// A notification the model wants posted.
public struct PendingNotification: Sendable, Equatable {
    public var title: String
    public var body: String
    /// What makes two notifications "the same error": the kind and message, not the log
    /// lines (which change from run to run).
    public var key: String
}

/// When to tell the user, outside the menu, that something went wrong.
///
/// - An auto-start failure (the app started the service on launch and it failed) is posted.
/// - An unexpected stop (running, then stopped without passing through `stopping` and without
///   the user asking) is posted: the service died.
/// - A service that stops answering (hung, suspended) and stays so for `unresponsiveNoticeSecs`
///   is posted: SPFS shells hang meanwhile, and the menu-bar icon alone may go unseen. A
///   moment's slowness is not, and one service is said not to answer once.
/// - A stop the user asked for, a graceful shutdown (`stopping` first) and an idle exit are not.
/// - The same notification is never posted twice in a row; a successful user action (`reset`)
///   forgets the last one, so a failure after the user tried again is reported again. So does a
///   death after a good run (`goodRunSecs`): a crash loop (launchd restarting a service that
///   dies at once) is said once, a crash days after the last one is news.
/// - Each kind (start failure, stop, not responding) is posted again only after a wait that
///   starts at `goodRunSecs` and doubles with each post, up to `maxRepeatSecs`: a service
///   that crashes after every minute's run, or hangs again after each restart, is not said
///   every time. A successful user action (`reset`) starts the waits over.
public struct NotificationPolicy: Sendable {
    /// How many log lines go into a notification body.
    public static let logLinesInBody = 3
    /// How long a service must have run for its death to be news again after an earlier one.
    public static let goodRunSecs: Double = 60

    /// How long the service must go unanswered before that is news outside the menu.
    public static let unresponsiveNoticeSecs: Double = 10

    /// The longest wait before a kind of notification is posted again.
    public static let maxRepeatSecs: Double = 3600

    private var lastKey: String?
    /// Per kind: when it may be posted again, and the wait that led there.
    private var backoff: [String: (next: Date, wait: Double)] = [:]

    public init() {}

    /// Forgets the last notification (after the user started or stopped the service).
    public mutating func reset() {
        lastKey = nil
        backoff = [:]
    }

    public mutating func autoStartFailed(
        _ failure: ServiceFailure, now: Date = Date()
    ) -> PendingNotification? {
        dedupe(
            now: now,
            PendingNotification(
                title: failure.title,
                body: Self.body(failure.message, hints: failure.hints, logTail: failure.logTail),
                key: "start:\(failure.title):\(failure.message)"
            )
        )
    }

    /// - Parameters:
    ///   - ranFor: how long the service had run when it died, when known.
    ///   - launchdRestarts: launchd runs it (Keep service running): it starts it again after a
    ///     crash by itself, within 10 seconds.
    public mutating func unexpectedStop(
        previous: ServiceSnapshot, logTail: [String], ranFor: Double? = nil,
        launchdRestarts: Bool = false, now: Date = Date()
    ) -> PendingNotification? {
        if let ranFor, ranFor >= Self.goodRunSecs { lastKey = nil }
        var message = "The SPFS service stopped unexpectedly"
        if let pid = previous.pid { message += " (pid \(pid))" }
        message +=
            launchdRestarts
            ? ". launchd starts it again (Keep service running); the system log may say why."
            : ". Start it again from the menu; the log may say why."
        return dedupe(
            now: now,
            PendingNotification(
                title: "SPFS service stopped",
                body: Self.body(message, logTail: logTail),
                key: "stop"
            )
        )
    }

    /// The service (`snapshot`, unresponsive) has not answered for `unresponsiveNoticeSecs`.
    public mutating func notResponding(
        _ snapshot: ServiceSnapshot, logTail: [String], now: Date = Date()
    ) -> PendingNotification? {
        var message = "The SPFS service"
        if let pid = snapshot.pid { message += " (pid \(pid))" }
        message += " has not answered for \(Int(Self.unresponsiveNoticeSecs)) seconds"
        if let detail = snapshot.detail, !detail.isEmpty { message += ": \(detail)" }
        message += ". SPFS shells may hang until it answers; Stop it from the menu, then start it again."
        return dedupe(
            now: now,
            PendingNotification(
                title: "SPFS service not responding",
                body: Self.body(message, logTail: logTail),
                key: "unresponsive:\(snapshot.pid.map(String.init) ?? "")"
            )
        )
    }

    /// Whether going from `previous` to `next` is a stop nobody asked for. An idle exit is not
    /// one: a kit service announces it (`stopping`, with its reason) before it goes, so it never
    /// goes from running to stopped directly. (The idle deadline a snapshot shows is no guide:
    /// every `ensure` postpones it without a watch update, and a crash taken for an idle exit
    /// went unsaid.)
    /// - Parameters:
    ///   - userRequested: the user pressed Stop since the service last ran.
    public static func isUnexpectedStop(
        previous: ServiceSnapshot,
        next: ServiceSnapshot,
        userRequested: Bool
    ) -> Bool {
        previous.state == .running && next.state == .stopped && !userRequested
    }

    /// The message, then each hint on a line of its own (what to do comes before the log, which
    /// only says why), then the last log lines.
    static func body(_ message: String, hints: [String] = [], logTail: [String]) -> String {
        ([message] + hints + logTail.suffix(logLinesInBody)).joined(separator: "\n")
    }

    private mutating func dedupe(
        now: Date, _ notification: PendingNotification
    ) -> PendingNotification? {
        if notification.key == lastKey { return nil }
        let kind = String(notification.key.prefix { $0 != ":" })
        if let last = backoff[kind], now < last.next { return nil }
        let wait = backoff[kind].map { min($0.wait * 2, Self.maxRepeatSecs) } ?? Self.goodRunSecs
        backoff[kind] = (next: now.addingTimeInterval(wait), wait: wait)
        lastKey = notification.key
        return notification
    }
}
