import SpfsMenuCore
import SwiftUI

/// "Launch at login" (the app, `SMAppService.mainApp`) and "Keep service running" (the bundled
/// LaunchAgent). A pending approval is shown with a button to System Settings.
struct LoginItemsView: View {
    @Bindable var model: MenuModel

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            Toggle("Launch at login", isOn: $model.launchAtLoginIsOn)
            LoginItemStatusText(status: model.state.launchAtLogin)
            Toggle("Keep service running", isOn: $model.keepRunningIsOn)
                .help("Registers a LaunchAgent that starts the SPFS service at login and restarts it.")
            LoginItemStatusText(status: model.state.keepRunning)
            if let notice = model.state.notice {
                Text(notice)
                    .font(.caption)
                    .fixedSize(horizontal: false, vertical: true)
                Button("Open Login Items Settings…") { model.openLoginItemsSettings() }
            }
        }
        .disabled(model.state.busy)
    }
}

/// A caption for the states a toggle cannot show by itself.
struct LoginItemStatusText: View {
    let status: LoginItemStatus

    var body: some View {
        switch status {
        case .requiresApproval:
            Text("Waiting for your approval in System Settings.")
                .font(.caption)
                .foregroundStyle(.secondary)
        // macOS may not know an item it has never registered: not said until turning it on
        // fails, and then the menu's error says why and what to do.
        case .enabled, .notRegistered, .notFound:
            EmptyView()
        }
    }
}
