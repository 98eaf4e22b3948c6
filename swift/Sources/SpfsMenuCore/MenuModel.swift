import Foundation
import Observation

/// The menu-bar app's model: one value of state, explicit actions, and injected clients.
///
/// Every action runs on the main actor and suspends (never blocks) while the library works.
/// Nothing here retries on its own: the service is started at launch (`activate`) and when
/// the user asks; a failed watch is re-established with a growing delay.
@Observable
@MainActor
public final class MenuModel {
    /// What the menu shows.
    public private(set) var state = MenuState()

    /// How many log lines the menu keeps.
    public let logLineCount: Int
    /// Delays, in seconds, before re-establishing a watch that ended; the last one repeats.
    public let watchRetryDelays: [Double]

    private var service: any ServiceClient
    /// Builds the service client again, from the config file as it is now (see
    /// `reloadService`); nil: the one client serves for good.
    private let makeService: (@MainActor () -> any ServiceClient)?
    private let launchAtLogin: any LaunchAtLoginClient
    private let keepRunning: any LaunchAtLoginClient
    private let notifier: any Notifier
    private let clock: any AppClock
    private let logOpener: any LogOpener

    @ObservationIgnored private var policy = NotificationPolicy()
    /// The user pressed Stop and the service has not run since.
    @ObservationIgnored private var userRequestedStop = false
    /// What `confirmStop()` carries out: the Stop that asked, or the "Keep service running"
    /// toggle (which stops the service to hand it over).
    @ObservationIgnored private var askedFor: AskedFor = .stop
    /// When `state.service` was last replaced.
    @ObservationIgnored private var lastSnapshotAt: Date?
    @ObservationIgnored private var watchTask: Task<Void, Never>?
    /// Waits out `NotificationPolicy.unresponsiveNoticeSecs` after the service stopped
    /// answering; cancelled once it answers again, or goes.
    @ObservationIgnored private var unresponsiveNotice: Task<Void, Never>?
    /// The error shown because the status could not be read: it goes once it can be.
    @ObservationIgnored private var statusReadError: MenuMessage?
    /// What the last start said that only a start says (its log could not be written, or is
    /// shared), with the pid it said it of: kept while that process runs, as the watch's
    /// statuses do not repeat it.
    @ObservationIgnored private var startWarnings: (pid: UInt32, warnings: [String])?

    public init(
        service: any ServiceClient,
        launchAtLogin: any LaunchAtLoginClient,
        keepRunning: any LaunchAtLoginClient,
        notifier: any Notifier,
        clock: any AppClock,
        logOpener: any LogOpener,
        logLineCount: Int = 20,
        watchRetryDelays: [Double] = [1, 2, 5, 10, 30, 60],
        makeService: (@MainActor () -> any ServiceClient)? = nil
    ) {
        self.service = service
        self.makeService = makeService
        self.launchAtLogin = launchAtLogin
        self.keepRunning = keepRunning
        self.notifier = notifier
        self.clock = clock
        self.logOpener = logOpener
        self.logLineCount = logLineCount
        self.watchRetryDelays = watchRetryDelays.isEmpty ? [1] : watchRetryDelays
    }

    // MARK: Lifecycle

    /// Called once when the app starts: reads the login-item states, starts the service
    /// (`autoStart`) or reads its status, and begins watching it. When launchd runs the
    /// service (Keep service running, approved), the app only looks: at login launchd starts
    /// its own, and a start of the app's would race it for the endpoint (the loser, launchd's,
    /// would be started again every 10 s).
    public func activate(autoStart: Bool = true) async {
        refreshLoginItems()
        if autoStart, state.keepRunning != .enabled {
            await ensureService(userInitiated: false)
        } else {
            await refresh()
        }
        startWatching()
    }

    /// Stops watching (the app is quitting, or a test is done).
    public func deactivate() {
        watchTask?.cancel()
        watchTask = nil
        unresponsiveNotice?.cancel()
        unresponsiveNotice = nil
    }

    /// Whether a watch is established or being re-established.
    public var isWatching: Bool { watchTask != nil }

    // MARK: Service actions

    /// The user pressed Start. The config file is read again first: a fix the user made
    /// after an error counts.
    public func start() async {
        guard beginAction() else { return }
        defer { state.busy = false }
        reloadService()
        await performEnsure(userInitiated: true)
    }

    /// The user pressed Stop. A service that runtimes use (its mounts, its leases) is not
    /// stopped at once: the menu asks first (`state.stopConfirmation`), and `confirmStop()`
    /// stops it. Never notifies: the user asked for it.
    public func stop() async {
        if state.busy { return }
        if let question = MenuMessage.stopInUse(state.service) {
            state.stopConfirmation = question
            askedFor = .stop
            return
        }
        await stopNow()
    }

    /// The user answered the question `stop()` (or the "Keep service running" toggle) asked:
    /// stop it all the same, and carry on.
    public func confirmStop() async {
        guard state.stopConfirmation != nil, !state.busy else { return }
        state.stopConfirmation = nil
        switch askedFor {
        case .stop: await stopNow()
        case .keepRunning: await toggleKeepRunning(confirmed: true)
        }
    }

    /// The user answered the question `stop()` (or the toggle) asked: leave the service
    /// running, and the toggle as it was.
    public func cancelStop() {
        state.stopConfirmation = nil
    }

    /// Stops the service, as an action of its own.
    private func stopNow() async {
        guard beginAction() else { return }
        defer { state.busy = false }
        await performStop()
    }

    /// Stops the service, and says so if it had to be forced; within an action. Whether it
    /// is stopped now (or was not running).
    @discardableResult
    private func performStop() async -> Bool {
        userRequestedStop = true
        defer { reloadLogs() }
        do {
            let result = try await service.stop()
            state.lastError = MenuMessage.uncleanStop(result)
            policy.reset()
        } catch {
            // The stop did not happen as asked: if the service dies later, that is news.
            userRequestedStop = false
            state.lastError = MenuMessage(ServiceFailure.from(error))
            return false
        }
        // The stop is done, whatever this look finds: a failure here is the status's.
        await look()
        return true
    }

    /// Reads the config file, the status and the login-item states again.
    public func refresh() async {
        guard beginAction() else { return }
        defer { state.busy = false }
        refreshLoginItems()
        reloadService()
        await look()
        reloadLogs()
    }

    /// The user chose "Diagnose...": runs the doctor and keeps its report in
    /// `state.diagnosis`. Never starts or stops the service.
    public func diagnose() async {
        guard beginAction() else { return }
        defer { state.busy = false }
        do {
            state.diagnosis = try await service.diagnose()
        } catch {
            state.lastError = MenuMessage(ServiceFailure.from(error))
        }
    }

    /// The menu was opened: its recent log lines are read again (they are otherwise read on a
    /// state change or an action, and a running service keeps writing).
    public func menuOpened() {
        reloadLogs()
    }

    /// The user closed the diagnosis.
    public func dismissDiagnosis() {
        state.diagnosis = nil
    }

    /// A status pushed by the watch (or read by an action). Detects unexpected stops.
    public func receive(_ snapshot: ServiceSnapshot) {
        let now = clock.now()
        // The status can be read again: the error that said it could not is out of date.
        if let shown = statusReadError {
            if state.lastError == shown { state.lastError = nil }
            statusReadError = nil
        }
        if let previous = state.service,
            NotificationPolicy.isUnexpectedStop(
                previous: previous,
                next: snapshot,
                userRequested: userRequestedStop
            )
        {
            let tail = notificationLogTail()
            // Its uptime when last heard of, and the time since.
            let ranFor = previous.uptimeSecs.map { uptime in
                Double(uptime) + (lastSnapshotAt.map { now.timeIntervalSince($0) } ?? 0)
            }
            post(
                policy.unexpectedStop(
                    previous: previous, logTail: tail, ranFor: ranFor,
                    launchdRestarts: state.keepRunning == .enabled, now: now))
        }
        if snapshot.state != .unresponsive {
            unresponsiveNotice?.cancel()
            unresponsiveNotice = nil
        } else if state.service?.state != .unresponsive {
            noticeIfStillUnresponsive(after: snapshot)
        }
        if snapshot.state == .running, state.service?.state != .running, !state.busy {
            // It runs again (not: still runs, while a stop is under way): a stop asked for
            // earlier no longer explains the next one, and an error from before it ran, such
            // as a failed start, is out of date. (An action under way says its own outcome:
            // its stop still explains the next stop, a failed start's error stands.)
            userRequestedStop = false
            if state.service != nil { state.lastError = nil }
        }
        if snapshot.state != state.service?.state {
            reloadLogs()
        }
        if state.stopConfirmation != nil {
            // The question follows the service: who uses it now, or none once nothing does
            // (or it stopped), and then Stop stops at once.
            state.stopConfirmation = MenuMessage.stopInUse(snapshot)
        }
        var snapshot = snapshot
        if var start = startWarnings, start.pid == snapshot.pid {
            // A warning the status says too (nothing mounted at /spfs) is not the start's
            // alone: the statuses keep or drop it, and it is not kept after they drop it.
            start.warnings.removeAll { snapshot.warnings.contains($0) }
            startWarnings = start
            snapshot.warnings += start.warnings
        }
        state.service = snapshot
        lastSnapshotAt = now
    }

    /// Hides the last error.
    public func dismissError() {
        state.lastError = nil
    }

    // MARK: Logs

    /// Opens the service log in the default viewer.
    public func openLogs() {
        guard let path = currentLogFile() else { return }
        if !logOpener.open(path: path) {
            state.lastError = MenuMessage(
                title: "Could not open the service log",
                message: "\(path) could not be opened; it may not exist yet if the service never ran."
            )
        }
    }

    /// Shows the service log in Finder.
    public func revealLogs() {
        guard let path = currentLogFile() else { return }
        logOpener.reveal(path: path)
    }

    // MARK: Login items

    /// Turns launch at login on or off (`SMAppService.mainApp`).
    public func toggleLaunchAtLogin() {
        state.launchAtLogin = toggle(
            launchAtLogin, from: state.launchAtLogin, name: "launch at login")
        state.notice = approvalNotice()
    }

    /// Turns the bundled LaunchAgent that keeps the service running on or off. Either way a
    /// running service changes hands, so it is stopped its own way first (as Stop does: while
    /// runtimes use it, the menu asks first, and `confirmStop()` goes on), a stop the user
    /// asked for that does not notify:
    /// - off, when launchd ran it (`enabled`; an agent still waiting for approval never ran
    ///   it): unregistering has launchd end it with SIGTERM, which spfs-fuse-macos does not
    ///   handle (it dies leaving its mount behind); after a graceful exit launchd has nothing
    ///   left to end and does not start it again;
    /// - on: launchd starts its own, which cannot listen where one started on demand still
    ///   does (and would be started again every 10 s). When launchd will not run it after all
    ///   (approval pending, or registering failed), the service is started on demand again.
    public func toggleKeepRunning() async {
        await toggleKeepRunning(confirmed: false)
    }

    /// `toggleKeepRunning`; `confirmed`: the user said to stop the service although it is in
    /// use.
    private func toggleKeepRunning(confirmed: Bool) async {
        // One action, stop and (un)registering together: a second toggle meanwhile would
        // unregister while the stop is under way.
        guard beginAction() else { return }
        defer { state.busy = false }
        // As the system has them now: the user may have approved, revoked or removed the
        // agent in System Settings since they were last read.
        refreshLoginItems()
        let launchdRanIt = state.keepRunning == .enabled
        let turningOn = !state.keepRunning.isOn
        // Refused before anything is stopped: the stop would hand the service to an agent
        // that cannot be registered, and it would only be started again.
        if turningOn, !keepRunning.isInBundle {
            state.lastError = MenuMessage(
                title: "Could not change keep service running",
                message: "This build of SPFS Menu has no service of its own to keep running: "
                    + "build it with macos-app/build-app.sh --service-binary PATH. Until then "
                    + "the menu starts the service when it is needed."
            )
            return
        }
        let stopFirst = state.primaryActionStops && (launchdRanIt || turningOn)
        if stopFirst, !confirmed, let question = MenuMessage.stopInUse(state.service) {
            state.stopConfirmation = question
            askedFor = .keepRunning
            return
        }
        // Turning it on, a service that did not stop keeps the endpoint: launchd's would
        // fail and be started again every 10 s. (Turning it off goes on: launchd ends a
        // service that would not stop its own way with SIGTERM, as the user asked.)
        if stopFirst, !(await performStop()), turningOn {
            return
        }
        state.keepRunning = toggle(
            keepRunning, from: state.keepRunning, name: "keep service running")
        if launchdRanIt, !state.keepRunning.isOn { userRequestedStop = true }
        if turningOn, stopFirst, state.keepRunning != .enabled {
            let why = state.lastError
            await performEnsure(userInitiated: true)
            if state.lastError == nil { state.lastError = why }
        }
        state.notice = approvalNotice()
    }

    /// Launch at login as a bool, for a toggle: setting it registers or unregisters.
    public var launchAtLoginIsOn: Bool {
        get { state.launchAtLogin.isOn }
        set { if newValue != state.launchAtLogin.isOn { toggleLaunchAtLogin() } }
    }

    /// Keep service running as a bool, for a toggle.
    public var keepRunningIsOn: Bool {
        get { state.keepRunning.isOn }
        set { if newValue != state.keepRunning.isOn { Task { await toggleKeepRunning() } } }
    }

    /// Opens System Settings > General > Login Items (to approve a `requiresApproval` item).
    public func openLoginItemsSettings() {
        launchAtLogin.openSettings()
    }

    // MARK: Internals

    private func ensureService(userInitiated: Bool) async {
        guard beginAction() else { return }
        defer { state.busy = false }
        await performEnsure(userInitiated: userInitiated)
    }

    /// Builds the service client again when the model was given a way to (the config file
    /// may have changed: a hint followed, a fix made), and watches through the new one.
    private func reloadService() {
        guard let makeService else { return }
        service = makeService()
        if watchTask != nil {
            watchTask?.cancel()
            watchTask = nil
            startWatching()
        }
    }

    /// Reads the status into the state; when it cannot be read, says why (until it can be
    /// again) and shows the state as unknown rather than the last one, gone stale.
    private func look() async {
        do {
            receive(try await service.status())
        } catch {
            let message = MenuMessage(ServiceFailure.from(error))
            state.lastError = message
            statusReadError = message
            state.service = nil
        }
    }

    /// Starts the service if needed; within an action.
    private func performEnsure(userInitiated: Bool) async {
        do {
            var snapshot = try await service.ensure()
            // Its answer lists no mounts (one RPC): the watch's stand while it is the same
            // process.
            if snapshot.mounts.isEmpty, let current = state.service, current.pid == snapshot.pid {
                snapshot.mounts = current.mounts
            }
            startWarnings = nil
            state.lastError = nil
            // It runs: a stop asked for earlier no longer explains the next one.
            userRequestedStop = false
            if userInitiated { policy.reset() }
            receive(snapshot)
            // What only the start says (its log unwritable or shared) is kept with its
            // process: the warnings a look at it does not give too (nothing mounted at /spfs
            // is the statuses' to keep or drop, whichever came first).
            if let pid = snapshot.pid {
                let looked = (try? await service.status()).flatMap {
                    $0.pid == pid ? $0.warnings : nil
                }
                startWarnings = (
                    pid: pid, warnings: snapshot.warnings.filter { !(looked ?? []).contains($0) }
                )
            }
        } catch {
            let failure = ServiceFailure.from(error)
            state.lastError = MenuMessage(failure)
            if !failure.logTail.isEmpty { state.recentLogs = failure.logTail }
            if !userInitiated { post(policy.autoStartFailed(failure, now: clock.now())) }
            if let snapshot = try? await service.status() {
                receive(snapshot)
                // The failure (in the menu, or notified) has said that it does not answer:
                // the notice that it still does not would say it a second time.
                if snapshot.state == .unresponsive {
                    unresponsiveNotice?.cancel()
                    unresponsiveNotice = nil
                }
            }
        }
        reloadLogs()
    }

    /// Marks the model busy; false (and nothing done) when another action is in flight.
    private func beginAction() -> Bool {
        if state.busy { return false }
        state.busy = true
        return true
    }

    private func refreshLoginItems() {
        state.launchAtLogin = launchAtLogin.status()
        state.keepRunning = keepRunning.status()
        state.notice = approvalNotice()
    }

    private func toggle(
        _ client: any LaunchAtLoginClient, from current: LoginItemStatus, name: String
    ) -> LoginItemStatus {
        do {
            switch current {
            case .enabled, .requiresApproval:
                try client.unregister()
            case .notRegistered, .notFound:
                try client.register()
            }
        } catch {
            state.lastError = MenuMessage(
                title: "Could not change \(name)",
                message: error.localizedDescription
            )
        }
        let status = client.status()
        if status == .notFound {
            // Said once registering has failed so: before, macOS may not know an item it has
            // never registered, and the menu says nothing of it.
            let bundled =
                client === keepRunning
                ? ", built with its service (macos-app/build-app.sh --service-binary PATH)" : ""
            state.lastError = MenuMessage(
                title: "Could not change \(name)",
                message: "macOS does not find this login item. Run SPFS Menu from its .app "
                    + "bundle (ideally in /Applications)\(bundled), and try again."
            )
        }
        return status
    }

    private func approvalNotice() -> String? {
        if state.launchAtLogin == .requiresApproval || state.keepRunning == .requiresApproval {
            return "Allow SPFS Menu in System Settings > General > Login Items."
        }
        return nil
    }

    private func reloadLogs() {
        if let lines = logTail() {
            state.recentLogs = lines
        }
        state.notice = approvalNotice()
    }

    /// The service's latest output: the service log's last lines; while launchd runs the
    /// service, where its output goes instead (the bundled agent names no log file, so the
    /// service log holds an older on-demand run's lines, which would pass for this one's).
    /// `nil` when the log cannot be read.
    private func logTail() -> [String]? {
        if state.keepRunning == .enabled {
            return [
                "launchd runs the service: its output is in the system log "
                    + "(log show --info --last 1h --predicate 'process == \"spfs-fuse-macos\"')"
            ]
        }
        return try? service.tailLogs(logLineCount)
    }

    private func currentLogFile() -> String? {
        if let path = state.service?.logFile, !path.isEmpty { return path }
        let path = service.logFile
        if !path.isEmpty { return path }
        state.lastError = MenuMessage(
            title: "No service log yet",
            message: "The log file's location is not known until the service library loads."
        )
        return nil
    }

    /// Posts that the service does not answer if it still does not (the same process) after
    /// `NotificationPolicy.unresponsiveNoticeSecs`, unless the user is at the menu meanwhile
    /// (an action of theirs says its own error there).
    private func noticeIfStillUnresponsive(after snapshot: ServiceSnapshot) {
        unresponsiveNotice?.cancel()
        unresponsiveNotice = Task { [weak self] in
            await self?.clock.sleep(seconds: NotificationPolicy.unresponsiveNoticeSecs)
            guard let self, !Task.isCancelled, !self.state.busy,
                let now = self.state.service, now.state == .unresponsive, now.pid == snapshot.pid
            else { return }
            let tail = self.notificationLogTail()
            self.post(self.policy.notResponding(now, logTail: tail, now: self.clock.now()))
        }
    }

    /// The log lines a notification carries ([`logTail`], or the last ones read).
    private func notificationLogTail() -> [String] {
        logTail() ?? state.recentLogs
    }

    private func post(_ notification: PendingNotification?) {
        guard let notification else { return }
        notifier.post(title: notification.title, body: notification.body)
    }


    private func startWatching() {
        guard watchTask == nil else { return }
        watchTask = Task { [weak self] in
            var attempt = 0
            while !Task.isCancelled {
                guard let stream = self?.service.watch() else { return }
                for await snapshot in stream {
                    guard let self else { return }
                    attempt = 0
                    self.receive(snapshot)
                }
                guard let self, !Task.isCancelled else { return }
                // One look shows what is there now, or why it cannot be seen, instead of
                // the last status going stale.
                await self.look()
                let delay = self.watchRetryDelays[min(attempt, self.watchRetryDelays.count - 1)]
                attempt += 1
                await self.clock.sleep(seconds: delay)
            }
        }
    }
}

/// What a "stop it while it is in use?" question was asked for.
private enum AskedFor {
    /// Stop.
    case stop
    /// The "Keep service running" toggle, which stops the service to hand it over.
    case keepRunning
}
