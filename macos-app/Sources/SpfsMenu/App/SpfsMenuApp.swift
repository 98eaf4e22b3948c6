import SpfsMenuCore
import SwiftUI

/// The menu-bar app: one `MenuBarExtra` in window style, whose icon follows the service state.
@main
struct SpfsMenuApp: App {
    @State private var model: MenuModel

    init() {
        let model = AppEnvironment.makeModel()
        _model = State(initialValue: model)
        // Start (or find) the service at launch and watch it; failures become notifications.
        Task { await model.activate() }
    }

    var body: some Scene {
        MenuBarExtra {
            MenuContentView(model: model)
        } label: {
            // The menu bar draws template images and ignores colour: one symbol per state.
            Image(systemName: model.state.symbolName)
                .accessibilityLabel(model.state.headline)
        }
        .menuBarExtraStyle(.window)
    }
}
