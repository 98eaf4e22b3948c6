import Foundation
import SpfsMenuCore
import UserNotifications

/// Posts through `UNUserNotificationCenter`. Asks for authorization once, on the first post;
/// when the user denied it, posts are dropped (the menu still shows the error).
///
/// Does nothing when not running inside an .app bundle (`swift run`): the notification
/// center needs a bundle identifier and raises an exception without one.
@MainActor
final class UserNotificationNotifier: Notifier {
    private let insideAppBundle = Bundle.main.bundleURL.pathExtension == "app"
    private var authorization: Task<Bool, Never>?

    func post(title: String, body: String) {
        guard insideAppBundle else { return }
        if self.authorization == nil {
            self.authorization = Task {
                let center = UNUserNotificationCenter.current()
                let granted = try? await center.requestAuthorization(options: [.alert, .sound])
                return granted ?? false
            }
        }
        guard let authorization = self.authorization else { return }
        Task {
            guard await authorization.value else { return }
            let content = UNMutableNotificationContent()
            content.title = title
            content.body = body
            content.sound = .default
            let request = UNNotificationRequest(
                identifier: UUID().uuidString, content: content, trigger: nil)
            try? await UNUserNotificationCenter.current().add(request)
        }
    }
}
