import ServiceManagement
import SpfsMenuCore
import SpfsMenuLive

/// Builds the model over the live clients. The only place that knows which ones.
@MainActor
enum AppEnvironment {
    /// The LaunchAgent plist bundled at `Contents/Library/LaunchAgents/` by `build-app.sh`.
    static let agentPlistName = "ai.spk.spfs-menu.spfs-fuse-macos.plist"

    static func makeModel() -> MenuModel {
        let service: any ServiceClient
        switch LiveServiceClient.makeDefault() {
        case .success(let client):
            service = client
        case .failure(let failure):
            // For example an invalid config file: the menu shows the message instead.
            service = UnavailableServiceClient(failure: failure)
        }
        return MenuModel(
            service: service,
            launchAtLogin: LoginItemClient(service: SMAppService.mainApp),
            keepRunning: LoginItemClient(service: SMAppService.agent(plistName: agentPlistName)),
            notifier: UserNotificationNotifier(),
            clock: SystemClock(),
            logOpener: WorkspaceLogOpener()
        )
    }
}
