import Foundation
import ServiceManagement
import SpfsMenuCore
import SpfsMenuLive

/// Builds the model over the live clients. The only place that knows which ones.
@MainActor
enum AppEnvironment {
    /// The LaunchAgent plist bundled at `Contents/Library/LaunchAgents/` by `build-app.sh`.
    static let agentPlistName = "ai.spk.spfs-menu.spfs-fuse-macos.plist"

    static func makeModel() -> MenuModel {
        MenuModel(
            service: makeService(),
            launchAtLogin: LoginItemClient(service: SMAppService.mainApp),
            keepRunning: LoginItemClient(
                service: SMAppService.agent(plistName: agentPlistName),
                bundledPlist: Bundle.main.bundleURL
                    .appendingPathComponent("Contents/Library/LaunchAgents")
                    .appendingPathComponent(agentPlistName)),
            notifier: UserNotificationNotifier(),
            clock: SystemClock(),
            logOpener: WorkspaceLogOpener(),
            // Start and Refresh read the config file again: a fix the user made counts.
            makeService: makeService
        )
    }

    /// The service client over the config file as it is now.
    static func makeService() -> any ServiceClient {
        switch LiveServiceClient.makeDefault() {
        case .success(let client):
            return client
        case .failure(let failure):
            // For example an invalid config file: the menu shows the message instead.
            return UnavailableServiceClient(failure: failure)
        }
    }
}
