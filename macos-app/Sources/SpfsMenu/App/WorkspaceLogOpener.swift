import AppKit
import SpfsMenuCore

/// Opens the service log with the default app for `.log` files (Console) or shows it in Finder.
@MainActor
final class WorkspaceLogOpener: LogOpener {
    func open(path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return NSWorkspace.shared.open(URL(fileURLWithPath: path))
    }

    func reveal(path: String) {
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: path) {
            NSWorkspace.shared.activateFileViewerSelecting([url])
        } else {
            // No log yet: show the folder it will be written to, when that exists.
            let folder = url.deletingLastPathComponent()
            if FileManager.default.fileExists(atPath: folder.path) {
                NSWorkspace.shared.activateFileViewerSelecting([folder])
            }
        }
    }
}
