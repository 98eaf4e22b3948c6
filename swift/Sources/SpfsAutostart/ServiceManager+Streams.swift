import Foundation

// `import SpfsAutostart` gives users the whole API: the generated bindings live in a target of
// their own (Swift 5 mode) and are re-exported from this one (Swift 6 mode).
@_exported import SpfsAutostartBindings

// AsyncStream adapters over the generated observer APIs (`watch`, `followLogs`).
//
// The library pushes through an observer object and returns a `TaskHandle` that cancels the
// work when cancelled or dropped. Each stream here owns its handle: the handle lives in the
// stream's termination handler, so it stays alive exactly as long as someone iterates, and
// it is cancelled when the stream ends or the iterating task is cancelled.

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
    /// be watched); `status()` then says why.
    /// - Parameter bufferingNewest: how many unread statuses to keep; older ones are dropped.
    public func statusUpdates(bufferingNewest: Int = 16) -> AsyncStream<ServiceStatus> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ServiceStatus.self, bufferingPolicy: .bufferingNewest(bufferingNewest))
        let handle = watch(observer: StatusStreamObserver(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return stream
    }

    /// New lines of the service log, as `followLogs(observer:)` reports them.
    /// - Parameter bufferingNewest: how many unread events to keep; older ones are dropped.
    public func logEvents(bufferingNewest: Int = 1000) -> AsyncStream<ServiceLogEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ServiceLogEvent.self, bufferingPolicy: .bufferingNewest(bufferingNewest))
        let handle = followLogs(observer: LogStreamObserver(continuation))
        continuation.onTermination = { _ in handle.cancel() }
        return stream
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
