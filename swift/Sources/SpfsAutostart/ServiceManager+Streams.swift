import Foundation

// `import SpfsAutostart` gives users the whole API: the generated bindings live in a target of
// their own (Swift 5 mode) and are re-exported from this one (Swift 6 mode).
@_exported import SpfsAutostartBindings

// AsyncStream adapters over the generated observer APIs (`watch`, `followLogs`).
//
// The library pushes through an observer object and returns a `TaskHandle` that cancels the
// work when cancelled or dropped. Each stream here owns its handle: the handle lives in the
// stream's termination handler (through a `FeedHandleBox`), so it stays alive exactly as long
// as someone iterates, and it is cancelled when the stream ends or the iterating task is
// cancelled.

/// One event of `ServiceManager.logEvents()`.
public enum ServiceLogEvent: Sendable, Equatable {
    /// A new line of the service log.
    case line(String)
    /// Following hit a problem (reported, not fatal: following goes on).
    case error(String)
}

extension ServiceManager {
    /// Status changes of the service, as `watch(observer:)` reports them. The stream ends
    /// when the library reports an error (the status cannot be read, or the state dir cannot
    /// be watched; `status()` then says why), or at once when no thread can be had for it.
    /// - Parameter bufferingNewest: how many unread statuses to keep; older ones are dropped.
    public func statusUpdates(bufferingNewest: Int = 16) -> AsyncStream<ServiceStatus> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ServiceStatus.self, bufferingPolicy: .bufferingNewest(bufferingNewest))
        // The handler is set before the feed starts: the library may end the stream from its
        // first call, before `watch` returns, and a handler set after the end never runs.
        let feed = FeedHandleBox()
        continuation.onTermination = { _ in feed.terminate() }
        do {
            feed.hold(try watch(observer: StatusStreamObserver(continuation)))
        } catch {
            // No thread for the feed: the stream ends at once.
            continuation.finish()
        }
        return stream
    }

    /// The service log's last `backlog` lines, then each new one, as
    /// `followLogs(observer:backlog:)` reports them: none lost or given twice between the two.
    /// When no thread can be had for following, the stream says so in one `.error` and ends.
    /// - Parameters:
    ///   - backlog: how many of the log's last lines come first (0: only new ones).
    ///   - bufferingNewest: how many unread events to keep; older ones are dropped.
    public func logEvents(backlog: UInt32 = 0, bufferingNewest: Int = 1000)
        -> AsyncStream<ServiceLogEvent>
    {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ServiceLogEvent.self, bufferingPolicy: .bufferingNewest(bufferingNewest))
        let feed = FeedHandleBox()
        continuation.onTermination = { _ in feed.terminate() }
        do {
            feed.hold(
                try followLogs(observer: LogStreamObserver(continuation), backlog: backlog))
        } catch {
            // No thread for the feed: said, and the stream ends.
            continuation.yield(.error("\(error)"))
            continuation.finish()
        }
        return stream
    }
}

/// What a feed's handle offers a `FeedHandleBox`: `TaskHandle`, or a test's stand-in.
protocol FeedCancellable: Sendable {
    func cancel()
}

extension TaskHandle: FeedCancellable {}

/// A stream's feed handle, for its termination handler, which may run before the handle
/// exists (the feed ended the stream from its first call) or after: whichever of `hold` and
/// `terminate` comes second cancels the feed, so it never outlives its stream.
final class FeedHandleBox: @unchecked Sendable {
    // `@unchecked`: every field is read and written under `lock`.
    private let lock = NSLock()
    private var handle: (any FeedCancellable)?
    private var terminated = false

    /// Keep the feed's handle; cancel it at once if the stream has already ended.
    func hold(_ handle: any FeedCancellable) {
        lock.lock()
        let ended = terminated
        if !ended { self.handle = handle }
        lock.unlock()
        // Outside the lock: `cancel` waits for an observer call in progress, which may be
        // the one ending the stream (and taking the lock in `terminate`).
        if ended { handle.cancel() }
    }

    /// The stream ended: cancel the feed, now or as soon as its handle is held.
    func terminate() {
        lock.lock()
        terminated = true
        let handle = self.handle
        self.handle = nil
        lock.unlock()
        handle?.cancel()
    }
}

/// Forwards `onStatus` into a stream. Immutable, so Sendable as the protocol requires.
final class StatusStreamObserver: StatusObserver {
    private let continuation: AsyncStream<ServiceStatus>.Continuation

    init(_ continuation: AsyncStream<ServiceStatus>.Continuation) {
        self.continuation = continuation
    }

    func onStatus(status: ServiceStatus) {
        continuation.yield(status)
    }

    /// The state dir cannot be watched, or the status cannot be read for now (`status()`
    /// says why): the stream ends, and whoever iterates it looks again (with `status()`) and
    /// watches again later.
    func onError(message: String) {
        continuation.finish()
    }
}

/// Forwards `onLine` / `onError` into a stream.
final class LogStreamObserver: LogObserver {
    private let continuation: AsyncStream<ServiceLogEvent>.Continuation

    init(_ continuation: AsyncStream<ServiceLogEvent>.Continuation) {
        self.continuation = continuation
    }

    func onLine(line: String) {
        continuation.yield(.line(line))
    }

    func onError(message: String) {
        continuation.yield(.error(message))
    }
}
