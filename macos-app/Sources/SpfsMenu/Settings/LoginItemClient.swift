import Foundation
import ServiceManagement
import SpfsMenuCore

/// `LaunchAtLoginClient` over an `SMAppService`: `.mainApp` for launch at login, or
/// `.agent(plistName:)` for the bundled LaunchAgent that keeps the service running.
@MainActor
final class LoginItemClient: LaunchAtLoginClient {
    private let service: SMAppService
    /// Where the agent's plist must be for `register()` to work; `nil` for the app itself.
    private let bundledPlist: URL?

    init(service: SMAppService, bundledPlist: URL? = nil) {
        self.service = service
        self.bundledPlist = bundledPlist
    }

    var isInBundle: Bool {
        bundledPlist.map { FileManager.default.fileExists(atPath: $0.path) } ?? true
    }

    func status() -> LoginItemStatus {
        switch service.status {
        case .notRegistered:
            return .notRegistered
        case .enabled:
            return .enabled
        case .requiresApproval:
            return .requiresApproval
        case .notFound:
            return .notFound
        @unknown default:
            // A state this build does not know: show it as not found rather than guess.
            return .notFound
        }
    }

    func register() throws {
        try service.register()
    }

    func unregister() throws {
        try service.unregister()
    }

    func openSettings() {
        SMAppService.openSystemSettingsLoginItems()
    }
}
