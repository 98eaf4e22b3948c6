import Foundation
import XCTest

@testable import SpfsMenuCore

/// `@unchecked Sendable`: XCTest's test discovery on Linux hands the test case to its
/// main-actor tests from a nonisolated context. That is safe because the class holds no state
/// (each test makes its own `Harness`).
final class MenuModelTests: XCTestCase, @unchecked Sendable {
    // MARK: State transitions

    @MainActor
    func testStartRunsEnsureAndShowsRunningState() async {
        let h = Harness()
        await h.model.start()
        XCTAssertEqual(h.service.ensureCalls, 1)
        XCTAssertEqual(h.model.state.stateKind, .running)
        XCTAssertFalse(h.model.state.busy)
        XCTAssertNil(h.model.state.lastError)
        XCTAssertEqual(h.model.state.recentLogs, ["line 2", "line 3", "line 4"])
        XCTAssertTrue(h.model.state.primaryActionStops)
    }

    @MainActor
    func testStopShowsStoppedStateAndClearsError() async {
        let h = Harness()
        h.service.ensureResults = [.failure(ServiceFailure(title: "Not ready in time", message: "slow"))]
        await h.model.start()
        XCTAssertNotNil(h.model.state.lastError)
        h.service.statusResult = .success(.idle)
        await h.model.refresh()
        await h.model.stop()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(h.model.state.stateKind, .stopped)
        XCTAssertNil(h.model.state.lastError)
        XCTAssertFalse(h.model.state.primaryActionStops)
    }

    @MainActor
    func testAStopThatHadToForceTheServiceSaysItMayHaveLeftItsMount() async {
        for how in [StopHow.terminated, .killed] {
            let h = Harness()
            h.service.statusResult = .success(.idle)
            await h.model.refresh()
            h.service.stopResults = [.success(.stopped(how))]
            await h.model.stop()
            XCTAssertEqual(h.model.state.stateKind, .stopped)
            let message = h.model.state.lastError
            XCTAssertEqual(message?.title, "The service did not stop cleanly", "\(how)")
            XCTAssertTrue(message?.message.contains("mount") ?? false, "\(how)")
            XCTAssertTrue(
                message?.message.contains(how == .killed ? "SIGKILL" : "SIGTERM") ?? false,
                "\(how)")
            XCTAssertTrue(h.notifier.posted.isEmpty, "the user asked for the stop")
        }
        let h = Harness()
        h.service.stopResults = [.success(.notRunning)]
        await h.model.stop()
        XCTAssertNil(h.model.state.lastError)
    }

    /// Stop pressed while runtimes use the service asks first, naming them; nothing is
    /// stopped until the user confirms, and Cancel leaves it running.
    @MainActor
    func testStopAsksFirstWhenRuntimesUseTheService() async {
        let h = Harness()
        var inUse = ServiceSnapshot.running  // leased by "spfs shell" (pid 77)
        inUse.mounts = [
            ServiceMount(runtimeName: "rt-1", rootPid: 42, editable: true, envSpec: "base"),
            ServiceMount(runtimeName: "", rootPid: 43, editable: false, envSpec: "-"),
        ]
        inUse.leases.append(ServiceLease(id: 2, pid: 42, label: "rt-1's lease"))
        inUse.users = ["rt-1 (pid 42)", "pid 43", "spfs shell (pid 77)"]
        h.model.receive(inUse)
        await h.model.stop()
        XCTAssertEqual(h.service.stopCalls, 0)
        let question = h.model.state.stopConfirmation
        XCTAssertEqual(question?.title, "Stop the service while it is in use?")
        XCTAssertTrue(
            question?.message.hasPrefix(
                "In use by 3 runtimes: rt-1 (pid 42), pid 43, spfs shell (pid 77).") ?? false,
            question?.message ?? "no question")
        XCTAssertEqual(h.model.state.stateKind, .running)

        h.model.cancelStop()
        XCTAssertNil(h.model.state.stopConfirmation)
        XCTAssertEqual(h.service.stopCalls, 0)

        await h.model.stop()
        XCTAssertNotNil(h.model.state.stopConfirmation)
        await h.model.confirmStop()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertNil(h.model.state.stopConfirmation)
        XCTAssertEqual(h.model.state.stateKind, .stopped)
        XCTAssertTrue(h.notifier.posted.isEmpty, "the user asked for the stop")
    }

    /// The question follows the service while it is shown: it names who uses it now, and
    /// goes once the service stops by itself, when confirming stops nothing.
    @MainActor
    func testTheStopQuestionFollowsTheService() async {
        let h = Harness()
        var twoUsers = ServiceSnapshot.running
        twoUsers.leases.append(ServiceLease(id: 2, pid: 78, label: ""))
        twoUsers.users.append("pid 78")
        h.model.receive(twoUsers)
        await h.model.stop()
        XCTAssertTrue(
            h.model.state.stopConfirmation?.message.contains("2 runtimes") ?? false)
        h.model.receive(.running)
        XCTAssertTrue(
            h.model.state.stopConfirmation?.message.contains("1 runtime: spfs shell (pid 77)")
                ?? false,
            h.model.state.stopConfirmation?.message ?? "no question")
        h.model.receive(.stopped)
        XCTAssertNil(h.model.state.stopConfirmation)
        await h.model.confirmStop()
        XCTAssertEqual(h.service.stopCalls, 0)
    }

    @MainActor
    func testDiagnoseStoresTheReportAsLinesWithFixesAndHintsAndStartsNothing() async {
        let h = Harness()
        h.service.diagnoseResult = .success(
            DiagnosisReport(
                findings: [
                    DiagnosisFinding(check: "program", severity: .ok, message: "found at /bin/x"),
                    DiagnosisFinding(
                        check: "endpoint", severity: .problem,
                        message: "tcp://127.0.0.1:1 is another user's: user bob (uid 501)",
                        fix: "ask user bob (uid 501) to stop it, or choose another `endpoint`",
                        hints: ["Change endpoint in the config file"]),
                ],
                next: "fail: the endpoint is taken (see above)",
                healthy: false
            ))
        await h.model.diagnose()
        XCTAssertEqual(h.service.diagnoseCalls, 1)
        XCTAssertEqual(h.service.ensureCalls, 0)
        XCTAssertEqual(h.service.stopCalls, 0)
        XCTAssertFalse(h.model.state.busy)
        XCTAssertNil(h.model.state.lastError)
        let report = h.model.state.diagnosis
        XCTAssertNotNil(report)
        XCTAssertEqual(report?.healthy, false)
        XCTAssertEqual(
            report?.lines,
            [
                "ok  program: found at /bin/x",
                "PROBLEM  endpoint: tcp://127.0.0.1:1 is another user's: user bob (uid 501)",
                "    fix: ask user bob (uid 501) to stop it, or choose another `endpoint`",
                "    Change endpoint in the config file",
                "next: fail: the endpoint is taken (see above)",
            ])
        h.model.dismissDiagnosis()
        XCTAssertNil(h.model.state.diagnosis)
    }

    /// Without a service client (an unusable config), Diagnose reports why, as the CLI's
    /// doctor does: a report with that one problem and its hints, not an error.
    @MainActor
    func testDiagnoseWithoutAServiceClientReportsWhy() async {
        let failure = ServiceFailure(
            title: "Invalid configuration", message: "unknown key `bogus`",
            hints: ["Fix the config file, then choose Refresh in the menu"])
        let model = MenuModel(
            service: UnavailableServiceClient(failure: failure), launchAtLogin: FakeLoginItem(),
            keepRunning: FakeLoginItem(), notifier: FakeNotifier(), clock: FakeClock(),
            logOpener: FakeLogOpener())
        await model.diagnose()
        let report = model.state.diagnosis
        XCTAssertEqual(report?.healthy, false)
        XCTAssertEqual(report?.findings.first?.severity, .problem)
        XCTAssertTrue(report?.findings.first?.message.contains("bogus") ?? false)
        XCTAssertEqual(report?.findings.first?.hints, failure.hints)
        XCTAssertNil(model.state.lastError)
    }

    @MainActor
    func testDiagnoseFailureShowsTheErrorAndNoReport() async {
        let h = Harness()
        h.service.diagnoseResult = .failure(
            ServiceFailure(title: "Invalid configuration", message: "bad config"))
        await h.model.diagnose()
        XCTAssertEqual(h.service.diagnoseCalls, 1)
        XCTAssertNil(h.model.state.diagnosis)
        XCTAssertEqual(h.model.state.lastError?.message, "bad config")
        XCTAssertFalse(h.model.state.busy)
    }

    @MainActor
    func testRefreshReadsStatusWithoutStarting() async {
        let h = Harness()
        h.service.statusResult = .success(.stopped)
        await h.model.refresh()
        XCTAssertEqual(h.service.ensureCalls, 0)
        XCTAssertEqual(h.model.state.stateKind, .stopped)
    }

    @MainActor
    func testActivateWithoutAutoStartOnlyReadsStatus() async {
        let h = Harness()
        await h.model.activate(autoStart: false)
        XCTAssertEqual(h.service.ensureCalls, 0)
        XCTAssertEqual(h.service.statusCalls, 1)
        XCTAssertTrue(h.model.isWatching)
        h.model.deactivate()
        XCTAssertFalse(h.model.isWatching)
    }

    @MainActor
    func testWatchEventsUpdateState() async {
        let h = Harness()
        await h.model.activate(autoStart: false)
        let watching = await h.settle { h.service.watchContinuations.count == 1 }
        XCTAssertTrue(watching)
        h.service.watchContinuations[0].yield(.running)
        let updated = await h.settle { h.model.state.stateKind == .running }
        XCTAssertTrue(updated)
        h.model.deactivate()
    }

    @MainActor
    func testEndedWatchIsReestablishedWithGrowingDelay() async {
        let h = Harness()
        await h.model.activate(autoStart: false)
        for round in 1...4 {
            let watching = await h.settle { h.service.watchContinuations.count == round }
            XCTAssertTrue(watching, "watch \(round) not established")
            h.service.watchContinuations[round - 1].finish()
        }
        let slept = await h.settle { h.clock.sleeps.count >= 4 }
        XCTAssertTrue(slept)
        // Never a tight loop: every retry waits, and the waits grow up to the last delay.
        XCTAssertEqual(Array(h.clock.sleeps.prefix(4)), [1, 2, 4, 4])
        h.model.deactivate()
    }

    @MainActor
    func testAnEndedWatchIsFollowedByALookThatShowsWhatIsThere() async {
        let h = Harness()
        h.service.statusResult = .success(.running)
        await h.model.activate(autoStart: false)
        var watching = await h.settle { h.service.watchContinuations.count == 1 }
        XCTAssertTrue(watching)
        // The status cannot be read any more: the watch ends, and the menu says why
        // instead of showing "running" from before.
        h.service.statusResult = .failure(
            ServiceFailure(title: "State dir not safe", message: "open to others"))
        h.service.watchContinuations[0].finish()
        let shown = await h.settle { h.model.state.lastError?.title == "State dir not safe" }
        XCTAssertTrue(shown)
        XCTAssertNil(h.model.state.stateKind, "unknown, not the running of before")
        // It can be read again: the next look shows the service, and the error goes.
        h.service.statusResult = .success(.stopped)
        watching = await h.settle { h.service.watchContinuations.count == 2 }
        XCTAssertTrue(watching)
        h.service.watchContinuations[1].finish()
        let stopped = await h.settle { h.model.state.stateKind == .stopped }
        XCTAssertTrue(stopped)
        XCTAssertNil(h.model.state.lastError)
        XCTAssertTrue(h.notifier.posted.isEmpty, "a stop seen across the gap is no news")
        h.model.deactivate()
    }

    /// Start and Refresh build the service client again (the config file as it is now: a
    /// fix the user made after an error counts), and the watch moves to the new one.
    @MainActor
    func testStartAndRefreshReadTheConfigAgain() async {
        let first = FakeService()
        first.ensureResults = [.failure(ServiceFailure(title: "Not ready in time", message: "slow"))]
        var made: [FakeService] = []
        let model = MenuModel(
            service: first, launchAtLogin: FakeLoginItem(), keepRunning: FakeLoginItem(),
            notifier: FakeNotifier(), clock: FakeClock(), logOpener: FakeLogOpener(),
            makeService: {
                let next = FakeService()
                made.append(next)
                return next
            })
        await model.activate()
        XCTAssertEqual(first.ensureCalls, 1, "at launch: the client it was given")
        XCTAssertEqual(model.state.lastError?.title, "Not ready in time")
        await model.start()
        XCTAssertEqual(made.count, 1)
        XCTAssertEqual(first.ensureCalls, 1)
        XCTAssertEqual(made[0].ensureCalls, 1)
        XCTAssertEqual(model.state.stateKind, .running)
        XCTAssertNil(model.state.lastError)
        var watching = false
        for _ in 0..<1000 where !watching {
            watching = made[0].watchCalls == 1
            await Task.yield()
        }
        XCTAssertTrue(watching, "the watch moved to the new client")
        await model.refresh()
        XCTAssertEqual(made.count, 2)
        XCTAssertEqual(made[1].statusCalls, 1)
        model.deactivate()
    }

    /// What only a start says (its log could not be written) stays shown while that process
    /// runs, though the watch's statuses do not repeat it; and a start's answer, which lists
    /// no mounts, does not hide the mounts the watch saw for the same process.
    @MainActor
    func testAStartsWarningsAndTheWatchedMountsBothStay() async {
        let h = Harness()
        var watched = ServiceSnapshot.idle
        watched.mounts = [
            ServiceMount(runtimeName: "rt-1", rootPid: 42, editable: false, envSpec: "base")
        ]
        h.model.receive(watched)
        var started = ServiceSnapshot.idle
        started.warnings = ["its log could not be written (disk full)"]
        h.service.ensureResults = [.success(started)]
        await h.model.start()
        XCTAssertEqual(h.model.state.service?.mounts, watched.mounts, "the watch's mounts")
        XCTAssertEqual(h.model.state.service?.warnings, started.warnings)
        h.model.receive(watched)  // the watch, which does not repeat it
        XCTAssertEqual(h.model.state.service?.warnings, started.warnings)
        var another = watched
        another.pid = 5151
        h.model.receive(another)  // another process: not its warning
        XCTAssertEqual(h.model.state.service?.warnings, [])
    }

    /// While launchd runs the service (Keep service running, approved), the app started at
    /// login only looks: a start of its own would race launchd's for the endpoint.
    @MainActor
    func testActivateOnlyLooksWhileLaunchdRunsTheService() async {
        let h = Harness()
        await h.activateWhileLaunchdRunsTheService()
        XCTAssertEqual(h.service.ensureCalls, 0)
        XCTAssertEqual(h.model.state.stateKind, .running)
        h.model.deactivate()

        let pending = Harness()
        pending.keepRunning.current = .requiresApproval
        await pending.model.activate()
        XCTAssertEqual(pending.service.ensureCalls, 1, "launchd will not run it yet")
        pending.model.deactivate()
    }

    /// A stop that worked, followed by a status that cannot be read, is no failed stop: the
    /// error is the status's (it goes once the status can be read), and nothing notifies.
    @MainActor
    func testAStatusThatCannotBeReadAfterAStopIsNotAFailedStop() async {
        let h = Harness()
        h.model.receive(.idle)
        h.service.statusAfterStop = .failure(
            ServiceFailure(title: "State dir not safe", message: "open to others"))
        await h.model.stop()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(h.model.state.lastError?.title, "State dir not safe")
        XCTAssertNil(h.model.state.stateKind)
        h.model.receive(.stopped)
        XCTAssertNil(h.model.state.lastError)
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    /// What only the start said (its log is shared) stays with its process; a warning the
    /// statuses say too (nothing mounted) goes once they no longer say it.
    @MainActor
    func testAStartsOwnWarningsStayAndOnesTheStatusSaysGoWithIt() async {
        let h = Harness()
        var started = ServiceSnapshot.idle
        started.warnings = ["the log is shared", "nothing is mounted at /spfs"]
        h.service.ensureResults = [.success(started)]
        await h.model.start()
        var watched = ServiceSnapshot.idle
        watched.warnings = ["nothing is mounted at /spfs"]
        h.model.receive(watched)
        XCTAssertEqual(
            h.model.state.service?.warnings, ["nothing is mounted at /spfs", "the log is shared"])
        h.model.receive(.idle)  // mounted now
        XCTAssertEqual(h.model.state.service?.warnings, ["the log is shared"])

        // The statuses said it before the start returned, and then no more: it goes too.
        let g = Harness()
        g.service.ensureResults = [.success(started)]
        g.service.statusAfterEnsure = { _ in watched }
        await g.model.start()
        g.model.receive(.idle)  // mounted now
        XCTAssertEqual(g.model.state.service?.warnings, ["the log is shared"])
    }

    /// A Start that fails although it left the service running (a fresh start reporting
    /// another version) keeps its error: the look after it is no reason to clear it.
    @MainActor
    func testAFailedStartThatLeftTheServiceRunningKeepsItsError() async {
        let h = Harness()
        h.service.ensureResults = [
            .failure(ServiceFailure(title: "Wrong service version", message: "9.9 wanted"))
        ]
        h.model.receive(.stopped)
        h.service.statusResult = .success(.idle)
        await h.model.start()
        XCTAssertEqual(h.model.state.stateKind, .running)
        XCTAssertEqual(h.model.state.lastError?.title, "Wrong service version")
    }

    /// A build without the bundled agent cannot keep the service running: the toggle says
    /// so and stops nothing (it would hand the service to no one and start it again).
    @MainActor
    func testKeepRunningWithoutABundledAgentStopsNothingAndSaysWhy() async {
        let h = Harness()
        await h.model.start()
        h.keepRunning.isInBundle = false
        h.keepRunning.current = .notFound
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.service.stopCalls, 0, "the running service is left alone")
        XCTAssertEqual(h.keepRunning.registerCalls, 0)
        XCTAssertEqual(h.service.ensureCalls, 1, "only the start before")
        XCTAssertEqual(h.model.state.stateKind, .running)
        XCTAssertTrue(
            h.model.state.lastError?.message.contains("--service-binary") ?? false,
            "\(String(describing: h.model.state.lastError))")
        XCTAssertFalse(h.model.state.busy)
    }

    /// Turning Keep service running on when the running service would not stop registers
    /// nothing: it keeps the endpoint, and launchd's would fail every 10 s.
    @MainActor
    func testKeepRunningIsNotTurnedOnWhenTheServiceWouldNotStop() async {
        let h = Harness()
        h.model.receive(.idle)
        h.service.stopResults = [.failure(ServiceFailure(title: "Not stopped", message: "hung"))]
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.keepRunning.registerCalls, 0)
        XCTAssertEqual(h.model.state.keepRunning, .notRegistered)
        XCTAssertEqual(h.model.state.lastError?.title, "Not stopped")
    }

    /// The login items are read again before a toggle: an agent the user approved in
    /// System Settings meanwhile is `enabled`, so turning it off stops the service first
    /// (launchd would end it with SIGTERM).
    @MainActor
    func testKeepRunningReadsTheAgentsStatusBeforeItToggles() async {
        let h = Harness()
        h.keepRunning.afterRegister = .requiresApproval
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.model.state.keepRunning, .requiresApproval)
        h.keepRunning.current = .enabled  // approved in System Settings
        h.model.receive(.idle)
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.service.stopCalls, 1, "launchd ran it: stopped its own way first")
        XCTAssertEqual(h.keepRunning.unregisterCalls, 1)
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    @MainActor
    func testActionsAreIgnoredWhileBusy() async {
        let h = Harness()
        let model = h.model
        var busyDuringStop = false
        // While `stop()` waits for the library, the user presses Start: it is ignored.
        h.service.stopYields = 20
        h.service.duringStop = {
            busyDuringStop = model.state.busy
            Task { @MainActor in await model.start() }
        }
        await model.stop()
        XCTAssertTrue(busyDuringStop)
        XCTAssertEqual(h.service.ensureCalls, 0)
        XCTAssertFalse(model.state.busy)
    }

    // MARK: Notification policy

    @MainActor
    func testAutoStartFailureNotifiesWithMessageAndLogTail() async {
        let h = Harness()
        h.service.ensureResults = [
            .failure(
                ServiceFailure(
                    title: "Exited while starting", message: "spfs-fuse-macos exited with status 1",
                    logFile: "/tmp/l.log", logTail: ["a", "b", "c", "fatal: no macFUSE"]))
        ]
        await h.model.activate()
        h.model.deactivate()
        XCTAssertEqual(h.notifier.posted.count, 1)
        let note = h.notifier.posted[0]
        XCTAssertEqual(note.title, "Exited while starting")
        XCTAssertTrue(note.body.contains("spfs-fuse-macos exited with status 1"))
        XCTAssertTrue(note.body.contains("fatal: no macFUSE"))
        XCTAssertFalse(note.body.contains("\na\n"), "only the last lines go in the body")
        XCTAssertEqual(h.model.state.lastError?.message, "spfs-fuse-macos exited with status 1")
    }

    @MainActor
    func testAutoStartFailureWithHintsShowsThemInTheMenuAndTheNotification() async {
        let h = Harness()
        let hints = [
            "Raise the start timeout in the config file (ready_timeout_secs)",
            "Choose Stop in the menu",
        ]
        h.service.ensureResults = [
            .failure(
                ServiceFailure(
                    title: "Not ready in time", message: "not ready after 1s (ready_timeout_secs)",
                    hints: hints, logTail: ["last line"]))
        ]
        await h.model.activate()
        h.model.deactivate()
        XCTAssertEqual(h.model.state.lastError?.hints, hints)
        XCTAssertEqual(h.notifier.posted.count, 1)
        let body = h.notifier.posted[0].body
        XCTAssertEqual(
            body,
            "not ready after 1s (ready_timeout_secs)\n" + hints.joined(separator: "\n")
                + "\nlast line",
            "the message, then what to do, then the log")
        XCTAssertFalse(body.contains("--"), "no CLI flag in \(body)")
        XCTAssertFalse(body.contains("spfs-autostart "), "no CLI command in \(body)")
    }

    @MainActor
    func testUserStartFailureShowsErrorWithoutNotification() async {
        let h = Harness()
        h.service.ensureResults = [.failure(ServiceFailure(title: "Could not start", message: "no"))]
        await h.model.start()
        XCTAssertTrue(h.notifier.posted.isEmpty)
        XCTAssertEqual(h.model.state.lastError?.title, "Could not start")
        XCTAssertEqual(h.model.state.symbolName, "externaldrive.badge.xmark")
    }

    @MainActor
    func testUnexpectedStopNotifies() async {
        let h = Harness()
        h.model.receive(.running)
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
        XCTAssertEqual(h.notifier.posted[0].title, "SPFS service stopped")
        XCTAssertTrue(h.notifier.posted[0].body.contains("pid 4242"))
        XCTAssertTrue(h.notifier.posted[0].body.contains("line 4"))
    }

    @MainActor
    func testAServiceThatStaysUnresponsiveIsNotifiedOnce() async {
        let h = Harness()
        h.model.receive(.running)
        h.model.receive(.hung)
        let posted = await h.settle { h.notifier.posted.count == 1 }
        XCTAssertTrue(posted, "no notification")
        XCTAssertEqual(h.clock.sleeps, [NotificationPolicy.unresponsiveNoticeSecs])
        XCTAssertEqual(h.notifier.posted.first?.title, "SPFS service not responding")
        XCTAssertTrue(h.notifier.posted.first?.body.contains("(pid 4242) has not answered") == true)
        XCTAssertTrue(h.notifier.posted.first?.body.contains("the process is suspended") == true)
        // It answers again, then hangs again: the same process is said not to answer once.
        h.model.receive(.running)
        h.model.receive(.hung)
        let waited = await h.settle { h.clock.sleeps.count == 2 }
        XCTAssertTrue(waited)
        for _ in 0..<20 { await Task.yield() }
        XCTAssertEqual(h.notifier.posted.count, 1)
    }

    /// An auto-start against a hung service fails saying it does not answer: that is one
    /// notification, not that one and "not responding" 10 s later.
    @MainActor
    func testAnAutoStartThatFoundTheServiceHungNotifiesOnce() async {
        let h = Harness()
        h.service.ensureResults = [
            .failure(ServiceFailure(title: "Not responding", message: "pid 4242 does not answer"))
        ]
        h.service.statusResult = .success(.hung)
        await h.model.activate()
        for _ in 0..<50 { await Task.yield() }
        h.model.deactivate()
        XCTAssertEqual(h.notifier.posted.map(\.title), ["Not responding"])
    }

    @MainActor
    func testAServiceThatAnswersAgainSoonIsNotNotified() async {
        let h = Harness()
        h.model.receive(.running)
        h.model.receive(.hung)
        h.model.receive(.running)
        for _ in 0..<50 { await Task.yield() }
        XCTAssertTrue(h.notifier.posted.isEmpty, "\(h.notifier.posted)")
    }

    @MainActor
    func testSameErrorIsNotNotifiedTwiceInARow() async {
        let h = Harness()
        h.model.receive(.justStarted)
        h.model.receive(.stopped)
        h.model.receive(.justStarted)  // restarted by someone else (launchd), died again at once
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
    }

    /// While launchd runs the service, its output is not in the service log (the bundled
    /// agent names none): a notification points at the system log instead of showing an older
    /// on-demand run's lines as this one's.
    @MainActor
    func testANotificationWhileLaunchdRunsTheServicePointsAtTheSystemLog() async {
        let h = Harness()
        await h.activateWhileLaunchdRunsTheService()
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
        let body = h.notifier.posted.first?.body ?? ""
        XCTAssertTrue(body.contains("system log"), body)
        XCTAssertFalse(body.contains("line 4"), body)
        h.model.deactivate()
    }

    /// The menu's recent log says the same while launchd runs the service, and shows the
    /// service log's lines again once it no longer does.
    @MainActor
    func testTheRecentLogWhileLaunchdRunsTheServicePointsAtTheSystemLog() async {
        let h = Harness()
        await h.activateWhileLaunchdRunsTheService()
        XCTAssertEqual(h.model.state.recentLogs.count, 1)
        XCTAssertTrue(
            h.model.state.recentLogs.first?.contains("system log") ?? false,
            "\(h.model.state.recentLogs)")
        h.model.deactivate()
        h.keepRunning.current = .notRegistered
        await h.model.refresh()
        XCTAssertTrue(h.model.state.recentLogs.contains("line 4"), "\(h.model.state.recentLogs)")
    }

    @MainActor
    func testADeathAfterAGoodRunIsNotifiedAgain() async {
        let h = Harness()
        h.model.receive(.justStarted)
        h.model.receive(.stopped)
        h.model.receive(.justStarted)  // restarted on demand (spfs's own ensure); runs a while
        h.clock.advance(NotificationPolicy.goodRunSecs + 1)
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 2)
    }

    /// A service that dies after every run of a minute or more (a crash loop slower than
    /// the good-run rule) is said ever less often: each repeat waits twice as long as the
    /// last. The user starting it again starts the waits over.
    @MainActor
    func testACrashLoopOfGoodRunsIsNotifiedEverLessOften() async {
        let h = Harness()
        for _ in 0..<10 {
            h.model.receive(.justStarted)
            h.clock.advance(NotificationPolicy.goodRunSecs + 10)
            h.model.receive(.stopped)
        }
        // Deaths 70 s apart; waits of 60, 120, 240 and 480 s: the 1st, 2nd, 4th and 8th
        // death are said, four in all.
        XCTAssertEqual(h.notifier.posted.count, 4)
        await h.model.start()
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 5, "news again after the user's start")
    }

    @MainActor
    func testFailureIsNotifiedAgainAfterTheUserTriedAgain() async {
        let h = Harness()
        h.model.receive(.running)
        h.model.receive(.stopped)
        await h.model.start()  // the user starts it: the next death is news again
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 2)
    }

    @MainActor
    func testRepeatedAutoStartFailureIsNotifiedOnce() async {
        let h = Harness()
        let failure = ServiceFailure(title: "Program not found", message: "not found in PATH")
        h.service.ensureResults = [.failure(failure), .failure(failure)]
        await h.model.activate()
        h.model.deactivate()
        await h.model.activate()
        h.model.deactivate()
        XCTAssertEqual(h.service.ensureCalls, 2)
        XCTAssertEqual(h.notifier.posted.count, 1)
    }

    @MainActor
    func testUserRequestedStopDoesNotNotify() async {
        let h = Harness()
        await h.model.start()
        // The watch reports the stop while `stop()` is still waiting for the library.
        h.service.duringStop = { h.model.receive(.stopped) }
        await h.model.stop()
        h.model.receive(.stopped)
        XCTAssertTrue(h.notifier.posted.isEmpty)
        XCTAssertEqual(h.model.state.stateKind, .stopped)
    }

    @MainActor
    func testAStopUnderWayIsNotForgottenWhileTheServiceStillRuns() async {
        let h = Harness()
        await h.model.start()
        // The watch still sees it running while the library stops it, then sees it stopped.
        h.service.duringStop = {
            h.model.receive(.running)
            h.model.receive(.stopped)
        }
        await h.model.stop()
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    @MainActor
    func testADeathAfterAFailedStopNotifies() async {
        let h = Harness()
        await h.model.start()
        h.service.stopResults = [.failure(ServiceFailure(title: "Not responding", message: "hung"))]
        await h.model.stop()
        h.model.receive(.running)
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
    }

    @MainActor
    func testOpeningTheMenuReadsTheRecentLogsAgain() async {
        let h = Harness()
        h.model.receive(.running)
        XCTAssertEqual(h.model.state.recentLogs, ["line 2", "line 3", "line 4"])
        h.service.logLines.append("line 5")
        h.model.receive(.running)  // no change of state: the lines stay as they were
        XCTAssertEqual(h.model.state.recentLogs.last, "line 4")
        h.model.menuOpened()
        XCTAssertEqual(h.model.state.recentLogs, ["line 3", "line 4", "line 5"])
    }

    @MainActor
    func testKeepRunningOffThatStopsNothingLeavesADeathNews() async {
        // Stopping it first and unregistering both failed: launchd still runs it, and a
        // death is a crash.
        let h = Harness()
        await h.model.toggleKeepRunning()
        h.keepRunning.unregisterError = TestError()
        h.service.stopResults = [.failure(ServiceFailure(title: "Not responding", message: "hung"))]
        h.model.receive(.idle)
        await h.model.toggleKeepRunning()
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
        // launchd starts it again: the notice says so, not "start it from the menu".
        let said = h.notifier.posted.first?.body ?? ""
        XCTAssertTrue(said.contains("launchd starts it again"), said)
        XCTAssertFalse(said.contains("from the menu"), said)
        // Waiting for approval, launchd never ran it: the app's own service dies unasked.
        let g = Harness()
        g.keepRunning.afterRegister = .requiresApproval
        await g.model.toggleKeepRunning()
        XCTAssertEqual(g.model.state.keepRunning, .requiresApproval)
        g.model.receive(.idle)
        await g.model.toggleKeepRunning()
        g.model.receive(.stopped)
        XCTAssertEqual(g.notifier.posted.count, 1)
        let told = g.notifier.posted.first?.body ?? ""
        XCTAssertTrue(told.contains("Start it again from the menu"), told)
    }

    @MainActor
    func testTurningKeepRunningOffDoesNotNotifyWhenLaunchdStopsTheService() async {
        let h = Harness()
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.model.state.keepRunning, .enabled)
        h.model.receive(.idle)
        // The stop this leads to: launchd's, when the model could not stop it first.
        h.service.stopResults = [.failure(ServiceFailure(title: "Not responding", message: "hung"))]
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.keepRunning.unregisterCalls, 1)
        h.model.receive(.running)
        h.model.receive(.stopped)
        XCTAssertTrue(h.notifier.posted.isEmpty)
        // Once it runs again, a death is news again.
        h.model.receive(.running)
        h.model.receive(.stopped)
        XCTAssertEqual(h.notifier.posted.count, 1)
    }

    @MainActor
    func testAFailedStartsErrorGoesWhenTheServiceRunsAgainButNotOnRefresh() async {
        let h = Harness()
        h.service.ensureResults = [.failure(ServiceFailure(title: "Not ready in time", message: "slow"))]
        await h.model.start()
        XCTAssertEqual(h.model.state.stateKind, .stopped)
        await h.model.refresh()
        XCTAssertEqual(h.model.state.lastError?.title, "Not ready in time")
        h.model.receive(.running)  // launchd (or another host) started it after all
        XCTAssertNil(h.model.state.lastError)
    }

    @MainActor
    func testGracefulShutdownDoesNotNotify() async {
        let h = Harness()
        h.model.receive(.running)
        h.model.receive(.stopping)
        h.model.receive(.stopped)
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    @MainActor
    func testAnIdleExitAnnouncedAsStoppingDoesNotNotify() async {
        let h = Harness()
        var idle = ServiceSnapshot.running
        idle.leases = []
        idle.users = []
        idle.idleExit = .after(secs: 60)
        h.model.receive(idle)
        h.clock.advance(60)
        h.model.receive(.stopping)
        h.model.receive(.stopped)
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    /// The idle deadline a snapshot showed is no guide: every `ensure` postpones it without a
    /// watch update, so a death near (or past) it is still a death.
    @MainActor
    func testADeathAroundTheShownIdleDeadlineNotifies() async {
        for after in [10.0, 58, 120] {
            let h = Harness()
            var idle = ServiceSnapshot.running
            idle.leases = []
            idle.users = []
            idle.idleExit = .after(secs: 60)
            h.model.receive(idle)
            h.clock.advance(after)
            h.model.receive(.stopped)
            XCTAssertEqual(h.notifier.posted.count, 1, "after \(after) s")
        }
    }

    // MARK: Errors

    @MainActor
    func testAFailureShowsItsTitleMessageAndLogTail() async {
        let h = Harness()
        h.service.ensureResults = [
            .failure(ServiceFailure(title: "Headline", message: "what happened", logTail: ["tail"]))
        ]
        await h.model.start()
        XCTAssertEqual(
            h.model.state.lastError,
            MenuMessage(title: "Headline", message: "what happened", logTail: ["tail"]))
        XCTAssertFalse(h.model.state.busy)
    }

    @MainActor
    func testForeignErrorBecomesAnUnexpectedFailure() async {
        let h = Harness()
        let failure = ServiceFailure.from(TestError())
        XCTAssertEqual(failure.title, ServiceFailure.unexpectedTitle)
        XCTAssertFalse(failure.message.isEmpty)
        h.service.statusResult = .failure(failure)
        await h.model.refresh()
        XCTAssertEqual(h.model.state.lastError?.title, ServiceFailure.unexpectedTitle)
    }

    @MainActor
    func testStopFailureShowsMessage() async {
        let h = Harness()
        h.service.stopResults = [.failure(ServiceFailure(title: "Not responding", message: "hung"))]
        await h.model.stop()
        XCTAssertEqual(h.model.state.lastError?.message, "hung")
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    // MARK: Launch at login

    @MainActor
    func testLaunchAtLoginToggleRegistersAndUnregisters() async {
        let h = Harness()
        await h.model.activate(autoStart: false)
        h.model.deactivate()
        XCTAssertEqual(h.model.state.launchAtLogin, .notRegistered)
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.launchAtLogin.registerCalls, 1)
        XCTAssertEqual(h.model.state.launchAtLogin, .enabled)
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.launchAtLogin.unregisterCalls, 1)
        XCTAssertEqual(h.model.state.launchAtLogin, .notRegistered)
    }

    @MainActor
    func testRequiresApprovalIsItsOwnStateWithANotice() async {
        let h = Harness()
        h.launchAtLogin.afterRegister = .requiresApproval
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.model.state.launchAtLogin, .requiresApproval)
        // The notice (and with it the button to System Settings) comes with the toggle.
        XCTAssertNotNil(h.model.state.notice)
        h.model.openLoginItemsSettings()
        XCTAssertEqual(h.launchAtLogin.openSettingsCalls, 1)
        // Turning it off from requiresApproval unregisters, and the notice goes.
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.launchAtLogin.unregisterCalls, 1)
        XCTAssertEqual(h.model.state.launchAtLogin, .notRegistered)
        XCTAssertNil(h.model.state.notice)
        // The same for the agent that keeps the service running.
        h.keepRunning.afterRegister = .requiresApproval
        await h.model.toggleKeepRunning()
        XCTAssertNotNil(h.model.state.notice)
    }

    @MainActor
    func testThrowingRegisterShowsErrorAndKeepsState() async {
        let h = Harness()
        h.launchAtLogin.registerError = TestError()
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.model.state.launchAtLogin, .notRegistered)
        XCTAssertEqual(h.model.state.lastError?.title, "Could not change launch at login")
        XCTAssertFalse(h.model.state.lastError?.message.isEmpty ?? true)
    }

    @MainActor
    func testNotFoundShowsExplanation() async {
        let h = Harness()
        h.launchAtLogin.afterRegister = .notFound
        h.model.toggleLaunchAtLogin()
        XCTAssertEqual(h.model.state.launchAtLogin, .notFound)
        XCTAssertTrue(h.model.state.lastError?.message.contains(".app") ?? false)
        XCTAssertFalse(h.model.state.lastError?.message.contains("--service-binary") ?? true)
        // The agent may be missing from a bundle built without the service: said too.
        h.keepRunning.afterRegister = .notFound
        await h.model.toggleKeepRunning()
        XCTAssertTrue(
            h.model.state.lastError?.message.contains("--service-binary") ?? false,
            "\(String(describing: h.model.state.lastError))")
    }

    /// Turning Keep Running off while launchd runs the service stops it its own way first,
    /// then unregisters (launchd would end it with SIGTERM, leaving spfs-fuse-macos's mount);
    /// a service that is not running is not stopped, and nothing notifies.
    @MainActor
    func testTurningKeepRunningOffStopsTheServiceItsOwnWayFirst() async {
        let h = Harness()
        await h.model.toggleKeepRunning()
        h.model.receive(.idle)
        var unregisteredBeforeTheStop: Bool?
        h.service.duringStop = { unregisteredBeforeTheStop = h.keepRunning.unregisterCalls > 0 }
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(unregisteredBeforeTheStop, false)
        XCTAssertEqual(h.keepRunning.unregisterCalls, 1)
        XCTAssertEqual(h.model.state.keepRunning, .notRegistered)
        XCTAssertEqual(h.model.state.stateKind, .stopped)
        XCTAssertNil(h.model.state.stopConfirmation)
        XCTAssertTrue(h.notifier.posted.isEmpty)

        let g = Harness()
        await g.model.toggleKeepRunning()
        g.model.receive(.stopped)
        await g.model.toggleKeepRunning()
        XCTAssertEqual(g.service.stopCalls, 0)
        XCTAssertEqual(g.keepRunning.unregisterCalls, 1)
    }

    /// Turning Keep Running on while a service started on demand runs stops it first, so
    /// that launchd's can listen; when launchd will not run it yet (approval pending), the
    /// service is started on demand again.
    @MainActor
    func testTurningKeepRunningOnHandsTheRunningServiceToLaunchd() async {
        let h = Harness()
        await h.model.start()
        var registeredBeforeTheStop: Bool?
        h.service.duringStop = { registeredBeforeTheStop = h.keepRunning.registerCalls > 0 }
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(registeredBeforeTheStop, false)
        XCTAssertEqual(h.model.state.keepRunning, .enabled)
        XCTAssertEqual(h.service.ensureCalls, 1, "launchd starts it, not the app")
        XCTAssertTrue(h.notifier.posted.isEmpty)

        let g = Harness()
        await g.model.start()
        g.keepRunning.afterRegister = .requiresApproval
        await g.model.toggleKeepRunning()
        XCTAssertEqual(g.service.stopCalls, 1)
        XCTAssertEqual(g.service.ensureCalls, 2, "on demand again until it is approved")
        XCTAssertEqual(g.model.state.stateKind, .running)
        XCTAssertNotNil(g.model.state.notice)

        // Nothing running: nothing to stop or start.
        let n = Harness()
        await n.model.toggleKeepRunning()
        XCTAssertEqual(n.service.stopCalls, 0)
        XCTAssertEqual(n.service.ensureCalls, 0)
    }

    /// The toggle stops the service to hand it over: while runtimes use it, the menu asks
    /// first, as Stop does; confirmed, the toggle goes on, cancelled, nothing changes.
    @MainActor
    func testKeepRunningAsksFirstWhileRuntimesUseTheService() async {
        let h = Harness()
        h.model.receive(.running)  // leased by "spfs shell"
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.service.stopCalls, 0)
        XCTAssertEqual(h.keepRunning.registerCalls, 0)
        XCTAssertEqual(h.model.state.stopConfirmation?.title, "Stop the service while it is in use?")
        h.model.cancelStop()
        XCTAssertNil(h.model.state.stopConfirmation)
        XCTAssertEqual(h.model.state.keepRunning, .notRegistered)
        await h.model.toggleKeepRunning()
        await h.model.confirmStop()
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(h.keepRunning.registerCalls, 1)
        XCTAssertEqual(h.model.state.keepRunning, .enabled)
        XCTAssertTrue(h.notifier.posted.isEmpty)
    }

    /// A second toggle while the first still stops the service does nothing: it would
    /// unregister under the stop, and the first would then register the agent again.
    @MainActor
    func testASecondKeepRunningToggleDuringTheFirstDoesNothing() async {
        let h = Harness()
        await h.model.toggleKeepRunning()
        h.model.receive(.idle)
        h.service.stopYields = 5
        let first = Task { await h.model.toggleKeepRunning() }
        let second = Task { await h.model.toggleKeepRunning() }
        await first.value
        await second.value
        XCTAssertEqual(h.service.stopCalls, 1)
        XCTAssertEqual(h.keepRunning.unregisterCalls, 1)
        XCTAssertEqual(h.keepRunning.registerCalls, 1, "only the first toggle's, before")
        XCTAssertEqual(h.model.state.keepRunning, .notRegistered)
    }

    @MainActor
    func testKeepRunningToggleUsesTheAgentClient() async {
        let h = Harness()
        await h.model.toggleKeepRunning()
        XCTAssertEqual(h.keepRunning.registerCalls, 1)
        XCTAssertEqual(h.launchAtLogin.registerCalls, 0)
        XCTAssertEqual(h.model.state.keepRunning, .enabled)
    }

    // MARK: Logs and presentation

    @MainActor
    func testOpenLogsUsesStatusLogFileAndReportsFailure() async {
        let h = Harness()
        await h.model.start()
        h.model.openLogs()
        XCTAssertEqual(h.logOpener.opened, ["/tmp/spfs-autostart-test/service.log"])
        h.logOpener.openSucceeds = false
        h.model.openLogs()
        XCTAssertEqual(h.model.state.lastError?.title, "Could not open the service log")
        h.model.revealLogs()
        XCTAssertEqual(h.logOpener.revealed.count, 1)
    }

    func testStatesShareASymbolOnlyWithinTheirGroup() {
        // The menu bar ignores colour, so the shape tells the states apart. Starting and
        // stopping share one (in transition), unresponsive and conflict another (needs the
        // user); every other pair differs, and a failure shows on a stopped service.
        let group: [ServiceStateKind: Int] = [
            .running: 0, .starting: 1, .stopping: 1, .unresponsive: 2, .conflict: 2, .stopped: 3,
        ]
        XCTAssertEqual(Set(group.keys), Set(ServiceStateKind.allCases))
        var state = MenuState()
        func symbol(_ kind: ServiceStateKind) -> String {
            state.service = ServiceSnapshot(state: kind)
            return state.symbolName
        }
        for a in ServiceStateKind.allCases {
            for b in ServiceStateKind.allCases where a != b {
                if group[a] == group[b] {
                    XCTAssertEqual(symbol(a), symbol(b), "\(a) and \(b)")
                } else {
                    XCTAssertNotEqual(symbol(a), symbol(b), "\(a) and \(b)")
                }
            }
        }
        // An error changes only the stopped symbol, to one no state has.
        let clean = Dictionary(uniqueKeysWithValues: ServiceStateKind.allCases.map { ($0, symbol($0)) })
        state.lastError = MenuMessage(title: "Could not start", message: "no")
        for kind in ServiceStateKind.allCases where kind != .stopped {
            XCTAssertEqual(symbol(kind), clean[kind], "\(kind): the state decides")
        }
        XCTAssertFalse(Set(clean.values).contains(symbol(.stopped)))
    }

    /// Stop is offered for a service stuck stopping and for our own service serving at
    /// another address (the library's remedy for that conflict), not for another program's.
    func testStopIsOfferedWhereTheLibrarySaysToStop() {
        var state = MenuState()
        state.service = .stopping
        XCTAssertTrue(state.primaryActionStops)
        state.service = ServiceSnapshot(state: .conflict, pid: 4242, detail: "serves elsewhere")
        XCTAssertTrue(state.primaryActionStops)
        XCTAssertEqual(state.headline, "SPFS service running at another address")
        state.service = ServiceSnapshot(state: .conflict, detail: "another program")
        XCTAssertFalse(state.primaryActionStops)
        XCTAssertEqual(state.headline, "SPFS service address in use by another program")
    }

    @MainActor
    func testWatchedMountsAreListedUnderTheStateLine() async {
        let h = Harness()
        await h.model.activate(autoStart: false)
        let watching = await h.settle { h.service.watchContinuations.count == 1 }
        XCTAssertTrue(watching)
        var mounted = ServiceSnapshot.running
        mounted.mounts = [
            ServiceMount(runtimeName: "rt-1", rootPid: 42, editable: true, envSpec: "platform/base"),
            ServiceMount(runtimeName: "", rootPid: 43, editable: false, envSpec: "-"),
        ]
        h.service.watchContinuations[0].yield(mounted)
        let updated = await h.settle { h.model.state.mountLines.count == 2 }
        XCTAssertTrue(updated)
        XCTAssertEqual(
            h.model.state.mountLines,
            ["rt-1 (pid 42, editable): platform/base", "pid 43 (read-only): -"])
        h.service.watchContinuations[0].yield(.running)
        let unmounted = await h.settle { h.model.state.mountLines.isEmpty }
        XCTAssertTrue(unmounted)
        h.model.deactivate()
    }

    func testIdleExitRowGivesTheDeadlineOrWhyThereIsNone() {
        var state = MenuState()
        var service = ServiceSnapshot.running
        let expected: [(ServiceIdleExit, String)] = [
            (.after(secs: 125), "in 2m 5s"),
            (.never, "never (idle timeout 0)"),
            (.notWhileLeased, "not while leases are held"),
            (.notWhileBusy, "not while a call is in flight"),
        ]
        for (idleExit, text) in expected {
            service.idleExit = idleExit
            state.service = service
            XCTAssertEqual(state.detailRows.first { $0.label == "Idle exit" }?.value, text)
        }
        service.idleExit = nil  // a plain service, or one not running
        state.service = service
        XCTAssertFalse(state.detailRows.contains { $0.label == "Idle exit" })
    }

    func testAPlainServiceShowsNoLeasesRow() {
        var state = MenuState()
        var plain = ServiceSnapshot.running
        plain.leases = []
        plain.users = []
        plain.idleExit = nil  // spfs-fuse-macos as upstream ships it: no kit
        state.service = plain
        XCTAssertEqual(state.detailRows.map(\.label), ["PID", "Version", "Uptime", "Endpoint"])
        var kit = plain
        kit.idleExit = .after(secs: 60)
        state.service = kit
        XCTAssertEqual(state.detailRows.first { $0.label == "Leases" }?.value, "none")
    }

    func testDetailRowsAndDurations() {
        var state = MenuState()
        state.service = .running
        let labels = state.detailRows.map(\.label)
        XCTAssertEqual(labels, ["PID", "Version", "Uptime", "Endpoint", "Leases", "Idle exit"])
        XCTAssertEqual(state.detailRows[2].value, "1h 2m")
        XCTAssertEqual(state.detailRows[5].value, "not while leases are held")
        XCTAssertEqual(formatDuration(45), "45s")
        XCTAssertEqual(formatDuration(125), "2m 5s")
        XCTAssertEqual(formatDuration(2 * 86_400 + 3 * 3_600), "2d 3h")
    }
}

extension MenuModelTests {
    // Async, so that XCTest on Linux runs it on the main actor (it calls synchronous tests
    // from a nonisolated context).
    @MainActor
    func testToggleBindingsOnlyActOnChange() async {
        let h = Harness()
        h.model.launchAtLoginIsOn = false  // already off: nothing to do
        XCTAssertEqual(h.launchAtLogin.registerCalls + h.launchAtLogin.unregisterCalls, 0)
        h.model.launchAtLoginIsOn = true
        XCTAssertEqual(h.launchAtLogin.registerCalls, 1)
        XCTAssertTrue(h.model.launchAtLoginIsOn)
        h.model.keepRunningIsOn = true
        let registered = await h.settle { h.keepRunning.registerCalls == 1 }
        XCTAssertTrue(registered)
        XCTAssertTrue(h.model.keepRunningIsOn)
    }
}
