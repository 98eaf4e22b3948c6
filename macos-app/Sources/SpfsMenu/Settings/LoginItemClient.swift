import ServiceManagement
import SpfsMenuCore

/// `LaunchAtLoginClient` over an `SMAppService`: `.mainApp` for launch at login, or
/// `.agent(plistName:)` for the bundled LaunchAgent that keeps the service running.
@MainActor
final class LoginItemClient: LaunchAtLoginClient {
    private let service: SMAppService

    init(service: SMAppService) {
        self.service = service
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
