import SpfsMenuCore
import SwiftUI

/// PID, uptime, leases, idle exit, endpoint, warnings: one row each.
struct StatusDetailsView: View {
    let rows: [DetailRow]

    var body: some View {
        if !rows.isEmpty {
            Grid(alignment: .leading, horizontalSpacing: 10, verticalSpacing: 2) {
                ForEach(rows, id: \.self) { row in
                    GridRow {
                        Text(row.label)
                            .foregroundStyle(.secondary)
                        Text(row.value)
                            .textSelection(.enabled)
                            .lineLimit(2)
                    }
                    .font(.caption)
                }
            }
        }
    }
}
