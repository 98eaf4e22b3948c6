import SpfsMenuCore
import SwiftUI

/// The last "Diagnose..." report: each finding with its fix, then what `ensure` would do next.
struct DiagnosisView: View {
    let report: DiagnosisReport
    let dismiss: @MainActor () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            HStack {
                Text(report.healthy ? "Diagnosis: healthy" : "Diagnosis: problems found")
                    .font(.subheadline.bold())
                Spacer()
                Button("Dismiss", action: dismiss)
                    .buttonStyle(.link)
            }
            ScrollView {
                Text(report.lines.joined(separator: "\n"))
                    .font(.caption.monospaced())
                    .textSelection(.enabled)
                    .frame(maxWidth: .infinity, alignment: .leading)
            }
            .frame(height: 160)
        }
    }
}
