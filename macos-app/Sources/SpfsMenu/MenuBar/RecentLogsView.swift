import SpfsMenuCore
import SwiftUI

/// The last lines of the service log, with buttons to open it in Console or show it in Finder.
struct RecentLogsView: View {
    let lines: [String]
    let open: @MainActor () -> Void
    let reveal: @MainActor () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            HStack {
                Text("Recent log")
                    .font(.subheadline.bold())
                Spacer()
                Button("Open Log", action: open)
                Button("Show in Finder", action: reveal)
            }
            ScrollView {
                Text(lines.isEmpty ? "No log lines yet." : lines.joined(separator: "\n"))
                    .font(.caption.monospaced())
                    .foregroundStyle(lines.isEmpty ? Color.secondary : Color.primary)
                    .textSelection(.enabled)
                    .frame(maxWidth: .infinity, alignment: .leading)
            }
            .frame(height: 120)
        }
    }
}
