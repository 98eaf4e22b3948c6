// Uses the SpfsAutostart product as a dependent package would: prints the library version,
// starts the given service on demand in a private state directory, checks that it runs, stops
// it and checks that it stopped. Exits 0 when all of that held, 1 otherwise, and never leaves
// the service running or the directory behind.
//
// usage: swift-consumer PATH-TO-spfs-reference-service
import Foundation
import SpfsAutostart

struct ConsumerFailure: Error, CustomStringConvertible {
    let description: String
}

func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
    if !condition { throw ConsumerFailure(description: what()) }
}

/// Ensure, status, stop, status, with the service's config in `dir`.
func run(program: String, dir: URL) async throws {
    let manager = try ServiceManager(
        config: ServiceConfig(
            configFile: nil,
            program: program,
            args: [],
            endpoint: "unix",
            stateDir: dir.appendingPathComponent("state").path,
            logDir: dir.appendingPathComponent("logs").path,
            readyTimeoutSecs: 30,
            stopTimeoutSecs: 10,
            // A safety net: should this program die between ensure and stop, the service
            // exits on its own a minute later.
            idleTimeoutSecs: 60,
            expectedVersion: nil
        ))
    do {
        let ensured = try await manager.ensure()
        try check(ensured.state == .running, "ensure returned \(ensured.state), not running")
        try check(ensured.pid != nil, "ensure returned no pid")
        let status = try await manager.status()
        try check(status.pid == ensured.pid, "status shows pid \(String(describing: status.pid))")
        print("swift-consumer: service running, pid \(ensured.pid ?? 0), \(ensured.endpoint)")
        let outcome = try await manager.stop()
        try check(outcome == .stopped, "stop returned \(outcome), not stopped")
        let after = try await manager.status()
        try check(after.state == .stopped, "after stop the state is \(after.state)")
        print("swift-consumer: service stopped")
    } catch {
        // Whatever failed, do not leave a service behind.
        _ = try? await manager.stop()
        throw error
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else {
    FileHandle.standardError.write(Data("usage: swift-consumer PATH-TO-spfs-reference-service\n".utf8))
    exit(2)
}
print("swift-consumer: spfs-autostart library \(version())")
// Short, under /tmp: the state dir holds a Unix socket (104/108-byte path limit).
let dir = URL(fileURLWithPath: "/tmp").appendingPathComponent(
    "spfs-consumer-\(UUID().uuidString.prefix(8))")
do {
    try FileManager.default.createDirectory(
        at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    try await run(program: arguments[1], dir: dir)
    try FileManager.default.removeItem(at: dir)
    print("swift-consumer: ok")
} catch {
    try? FileManager.default.removeItem(at: dir)
    FileHandle.standardError.write(Data("swift-consumer: \(error)\n".utf8))
    exit(1)
}
