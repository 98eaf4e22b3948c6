import Foundation
import SpfsMenuCore
import UserNotifications

/// Posts through `UNUserNotificationCenter`. Asks for authorization when the app starts (so
/// the first failure's notice does not wait on the prompt); after that, each post reads the
/// current setting, so a user who allows notifications later in
/// System Settings gets them without relaunching the app. When they are not allowed, posts
/// are dropped (the menu still shows the error).
///
/// Its notices show while the app is frontmost too (its menu open): without a delegate that
/// says how, macOS delivers a frontmost app's notifications silently to Notification Center.
/// Made in `App.init`, before launch finishes, as Apple requires of the delegate.
///
/// Does nothing when not running inside an .app bundle (`swift run`): the notification
/// center needs a bundle identifier and raises an exception without one.
@MainActor
final class UserNotificationNotifier: Notifier {
    private let insideAppBundle = Bundle.main.bundleURL.pathExtension == "app"
    /// Held here: the center keeps its delegate weakly.
    private let presenter = ForegroundPresenter()

    init() {
        if insideAppBundle {
            UNUserNotificationCenter.current().delegate = presenter
            Task { _ = await Self.allowed() }
        }
    }

    func post(title: String, body: String) {
        guard insideAppBundle else { return }
        Task {
            guard await Self.allowed() else { return }
            let content = UNMutableNotificationContent()
            content.title = title
            content.body = body
            content.sound = .default
            let request = UNNotificationRequest(
                identifier: UUID().uuidString, content: content, trigger: nil)
            try? await UNUserNotificationCenter.current().add(request)
        }
    }

    /// Whether notifications may be posted now: the user's current setting, asked for the
    /// first time (the system prompts only then). Nonisolated, so that the settings object
    /// (not `Sendable` in every SDK) never crosses from the center to the main actor: only
    /// the `Bool` does.
    nonisolated private static func allowed() async -> Bool {
        let center = UNUserNotificationCenter.current()
        switch await center.notificationSettings().authorizationStatus {
        case .authorized, .provisional:
            return true
        case .notDetermined:
            return (try? await center.requestAuthorization(options: [.alert, .sound])) ?? false
        default:
            return false
        }
    }
}

/// Shows a notice that arrives while the app is frontmost as a banner with its sound, as when
/// it is not.
final class ForegroundPresenter: NSObject, UNUserNotificationCenterDelegate, Sendable {
    func userNotificationCenter(
        _ center: UNUserNotificationCenter,
        willPresent notification: UNNotification,
        withCompletionHandler completionHandler:
            @escaping @Sendable (UNNotificationPresentationOptions) -> Void
    ) {
        completionHandler([.banner, .list, .sound])
    }
}
