import AppKit
import Combine
import SpfsMenuCore
import SwiftUI

/// The window that drops down from the menu-bar icon.
struct MenuContentView: View {
    let model: MenuModel

    var body: some View {
        VStack(alignment: .leading, spacing: 10) {
            StatusHeaderView(state: model.state)
            ForEach(model.state.mountLines, id: \.self) { line in
                Label(line, systemImage: "externaldrive.connected.to.line.below")
                    .font(.caption)
                    .textSelection(.enabled)
            }
            if let error = model.state.lastError {
                ErrorBannerView(error: error, dismiss: { model.dismissError() })
            }
            StatusDetailsView(rows: model.state.detailRows)
            ServiceButtonsView(model: model)
            if let question = model.state.stopConfirmation {
                StopConfirmationView(
                    question: question,
                    confirm: { Task { await model.confirmStop() } },
                    cancel: { model.cancelStop() }
                )
            }
            if let report = model.state.diagnosis {
                DiagnosisView(report: report, dismiss: { model.dismissDiagnosis() })
            }
            Divider()
            RecentLogsView(
                lines: model.state.recentLogs,
                open: { model.openLogs() },
                reveal: { model.revealLogs() }
            )
            Divider()
            LoginItemsView(model: model)
            Divider()
            HStack {
                Spacer()
                Button("Quit SPFS Menu") { NSApplication.shared.terminate(nil) }
            }
        }
        .padding(12)
        .frame(width: 380)
        // Each time the menu opens (its window becomes key; `onAppear` alone may come only
        // once for a menu-bar window), the recent log lines are read again.
        .onAppear { model.menuOpened() }
        .onReceive(NotificationCenter.default.publisher(for: NSWindow.didBecomeKeyNotification)) {
            _ in model.menuOpened()
        }
    }
}

/// Start/Stop and Refresh; disabled while an action runs.
struct ServiceButtonsView: View {
    let model: MenuModel

    var body: some View {
        HStack {
            if model.state.primaryActionStops {
                Button("Stop") { Task { await model.stop() } }
            } else {
                Button("Start") { Task { await model.start() } }
                    .keyboardShortcut(.defaultAction)
            }
            Button("Refresh") { Task { await model.refresh() } }
            Button("Diagnose...") { Task { await model.diagnose() } }
            if model.state.busy {
                ProgressView()
                    .controlSize(.small)
            }
        }
        .disabled(model.state.busy)
    }
}

/// The question Stop asks while runtimes use the service, with its two answers.
struct StopConfirmationView: View {
    let question: MenuMessage
    let confirm: @MainActor () -> Void
    let cancel: @MainActor () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            Text(question.title)
                .font(.subheadline.bold())
            Text(question.message)
                .font(.caption)
                .fixedSize(horizontal: false, vertical: true)
            HStack {
                Button("Stop Anyway", role: .destructive, action: confirm)
                Button("Cancel", action: cancel)
                    .keyboardShortcut(.cancelAction)
            }
        }
        .padding(8)
        .background(.quaternary, in: RoundedRectangle(cornerRadius: 6))
    }
}

/// The symbol and one line saying what the service does.
struct StatusHeaderView: View {
    let state: MenuState

    var body: some View {
        HStack(spacing: 8) {
            Image(systemName: state.symbolName)
                .font(.title2)
            Text(state.headline)
                .font(.headline)
        }
    }
}

/// The last error: headline, message, what to do about it and the log lines that came with it.
struct ErrorBannerView: View {
    let error: MenuMessage
    let dismiss: @MainActor () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            HStack(alignment: .firstTextBaseline) {
                Image(systemName: "exclamationmark.triangle.fill")
                Text(error.title)
                    .font(.subheadline.bold())
                Spacer()
                Button("Dismiss", action: dismiss)
                    .buttonStyle(.link)
            }
            Text(error.message)
                .font(.caption)
                .textSelection(.enabled)
                .fixedSize(horizontal: false, vertical: true)
            ForEach(error.hints, id: \.self) { hint in
                Label(hint, systemImage: "lightbulb")
                    .font(.caption)
                    .fixedSize(horizontal: false, vertical: true)
            }
            if !error.logTail.isEmpty {
                Text(error.logTail.suffix(5).joined(separator: "\n"))
                    .font(.caption.monospaced())
                    .foregroundStyle(.secondary)
                    .textSelection(.enabled)
                    .lineLimit(5)
            }
        }
        .padding(8)
        .background(.quaternary, in: RoundedRectangle(cornerRadius: 6))
    }
}
