"""The generated Python bindings over the reference service."""

import asyncio
import os
import queue
import socket
import subprocess
import threading
import time

import pytest

import spfs_autostart as sa
from conftest import run
from procs import service_pids


def test_version_is_the_package_version():
    import tomllib

    from conftest import ROOT

    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    assert sa.version() == workspace["workspace"]["package"]["version"]


def test_ensure_status_tail_stop(service):
    mgr = service.manager()
    status = run(mgr.ensure())
    assert status.state == sa.ServiceState.RUNNING
    assert status.pid and status.pid > 0
    assert status.endpoint == f"unix://{service.socket}"
    assert status.log_file == mgr.log_file()
    assert status.log_file.startswith(str(service.log_dir))

    again = run(mgr.status())
    assert again.state == sa.ServiceState.RUNNING
    assert again.pid == status.pid

    lines = mgr.tail_logs(20)
    assert lines, "the service logs something when it starts"
    assert len(mgr.tail_logs(1)) == 1

    assert run(mgr.stop()) == sa.StopOutcome.STOPPED
    assert run(mgr.stop()) == sa.StopOutcome.NOT_RUNNING
    stopped = run(mgr.status())
    assert stopped.state == sa.ServiceState.STOPPED
    assert stopped.pid is None
    assert service_pids(service.state_dir) == []


def test_doctor_on_a_healthy_sandbox_is_healthy(service):
    mgr = service.manager()
    report = run(mgr.doctor())
    assert report.healthy, report
    checks = [f.check for f in report.findings]
    assert "program" in checks and "endpoint" in checks, checks
    assert all(f.severity != sa.DoctorSeverity.PROBLEM for f in report.findings)
    endpoint = next(f for f in report.findings if f.check == "endpoint")
    assert "is free" in endpoint.message, endpoint
    assert report.next.startswith("start "), report.next
    assert service_pids(service.state_dir) == [], "doctor starts nothing"


def test_doctor_findings_carry_their_remedies_as_data(service):
    service.state_dir.mkdir(mode=0o700)
    os.chmod(service.state_dir, 0o750)
    try:
        report = run(service.manager().doctor())
    finally:
        # Private again, so the fixture's stop can look at it.
        os.chmod(service.state_dir, 0o700)
    assert not report.healthy, report
    state = next(f for f in report.findings if f.check == "state dir")
    assert state.severity == sa.DoctorSeverity.PROBLEM, state
    assert state.remedies == [sa.Remedy.SET_KEY(key="state_dir")], state
    program = next(f for f in report.findings if f.check == "program")
    assert program.remedies == [], program


def test_async_calls_from_asyncio(service):
    mgr = service.manager()

    async def main():
        coro = mgr.ensure()
        assert asyncio.iscoroutine(coro)
        results = await asyncio.gather(*(mgr.ensure() for _ in range(8)), coro)
        status = await mgr.status()
        lease = await mgr.acquire(os.getpid(), "pytest")
        leased = await mgr.status()
        released = await mgr.release(lease.id)
        outcome = await mgr.stop()
        return results, status, lease, leased, released, outcome

    results, status, lease, leased, released, outcome = run(main())
    assert len({r.pid for r in results}) == 1
    assert status.pid == results[0].pid
    assert lease.pid == os.getpid() and lease.label == "pytest"
    assert any(l.id == lease.id for l in leased.leases)
    assert released is True
    assert outcome == sa.StopOutcome.STOPPED


def test_stop_report_says_how_the_service_ended(service, tmp_path):
    mgr = service.manager()
    pid = run(mgr.ensure()).pid
    report = run(mgr.stop_report())
    assert report == sa.StopReport(
        outcome=sa.StopOutcome.STOPPED, how=sa.StopMethod.GRACEFUL, pid=pid
    ), report
    assert run(mgr.stop_report()) == sa.StopReport(
        outcome=sa.StopOutcome.NOT_RUNNING, how=None, pid=None
    )

    # The stand-in as upstream's spfs-fuse-macos, stopped by SIGTERM alone:
    # it dies at once and leaves its mount behind, and the report says so.
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "plain.toml"
    conf.write_text('stop_sequence = ["SIGTERM"]\n')
    plain = service.manager(
        config_file=str(conf),
        args=["--plain", "service", str(mnt)],
        endpoint=f"tcp://127.0.0.1:{port}",
    )
    pid = run(plain.ensure()).pid
    report = run(plain.stop_report())
    assert (report.outcome, report.how, report.pid) == (
        sa.StopOutcome.STOPPED,
        sa.StopMethod.TERMINATED,
        pid,
    ), report
    assert (mnt / ".spfs-reference-service.mounted").exists(), "killed, it cleaned up nothing"


def test_idle_exit_gives_the_deadline_or_why_there_is_none(service):
    mgr = service.manager(idle_timeout_secs=600)
    running = run(mgr.ensure())
    assert running.managed is True and running.idle_timeout_secs == 600, running
    idle = running.idle_exit
    assert isinstance(idle, sa.IdleExit.AFTER) and 590 <= idle.secs <= 600, idle
    lease = run(mgr.acquire(os.getpid(), "pytest"))
    assert run(mgr.status()).idle_exit == sa.IdleExit.NOT_WHILE_LEASED()
    assert run(mgr.release(lease.id)) is True
    assert run(mgr.stop()) == sa.StopOutcome.STOPPED
    stopped = run(mgr.status())
    assert stopped.idle_exit is None, "a stopped service tells nothing"
    assert stopped.managed is False and stopped.idle_timeout_secs is None, stopped

    never = service.manager(idle_timeout_secs=0)
    assert run(never.ensure()).idle_exit == sa.IdleExit.NEVER()


def test_status_names_who_uses_the_service(service):
    mgr = service.manager()
    assert run(mgr.ensure()).users == []
    lease = run(mgr.acquire(os.getpid(), "pytest"))
    # The words the CLI's `stop` warns with and the app's stop question uses.
    assert run(mgr.status()).users == [f"pytest (pid {os.getpid()})"]
    assert run(mgr.release(lease.id)) is True
    assert run(mgr.status()).users == []


def test_cancelling_ensure_kills_the_service_it_was_starting(service):
    # A service that would take a minute to become ready, and a call that
    # would wait for it longer than this test waits for the cleanup (a
    # detached call would kill it at its own ready timeout).
    slow = service.manager(args=["--start-delay-ms", "60000"], ready_timeout_secs=300)

    async def cancel_while_starting():
        task = asyncio.ensure_future(slow.ensure())
        deadline = time.monotonic() + 30
        while not service_pids(service.state_dir):
            assert time.monotonic() < deadline, "the service was never started"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(cancel_while_starting())
    # The cancelled call's spawner kills what it started (the core's drop
    # guard): nothing is left starting in the background.
    deadline = time.monotonic() + 20
    while service_pids(service.state_dir):
        assert time.monotonic() < deadline, "the cancelled start left its service running"
        time.sleep(0.05)
    # And it let go of spawn.lock: the next ensure starts a service at once.
    status = run(service.manager().ensure())
    assert status.state == sa.ServiceState.RUNNING
    assert service_pids(service.state_dir) == [status.pid]


def test_a_lease_for_a_process_that_is_gone_is_an_invalid_argument(service):
    mgr = service.manager()
    gone = subprocess.Popen(["true"])
    gone.wait()
    for pid in (gone.pid, 0, 2**32 - 1):
        with pytest.raises(sa.ServiceError) as info:
            run(mgr.acquire(pid, "pytest"))
        assert info.value.kind == sa.ErrorKind.INVALID_ARGUMENT, info.value
    # Refused before anything was started.
    assert service_pids(service.state_dir) == []


class Observer(sa.StatusObserver):
    """Collects statuses and errors; the tests check both on their own
    thread (a `pytest.fail` here, on the feed's thread, would only end the
    feed)."""

    def __init__(self):
        self.updates = queue.Queue()
        self.errors = []

    def on_status(self, status):
        self.updates.put(status)

    def on_error(self, message):
        self.errors.append(message)

    def wait_for(self, state, timeout=20.0):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                status = self.updates.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(status.state)
            if status.state == state:
                return status
        pytest.fail(f"no {state} update within {timeout}s; saw {seen}; errors {self.errors}")


def test_watch_sees_a_start_stop_cycle(service):
    mgr = service.manager()
    observer = Observer()
    handle = mgr.watch(observer)
    try:
        first = observer.wait_for(sa.ServiceState.STOPPED)
        assert first.pid is None
        started = run(mgr.ensure())
        running = observer.wait_for(sa.ServiceState.RUNNING)
        assert running.pid == started.pid
        run(mgr.stop())
        observer.wait_for(sa.ServiceState.STOPPED)
    finally:
        handle.cancel()
    handle.cancel()  # twice is fine
    assert observer.errors == []


def test_watch_stops_when_cancelled(service):
    mgr = service.manager()
    observer = Observer()
    handle = mgr.watch(observer)
    observer.wait_for(sa.ServiceState.STOPPED)
    handle.cancel()
    time.sleep(0.3)
    run(mgr.ensure())
    time.sleep(1.0)
    states = []
    while not observer.updates.empty():
        states.append(observer.updates.get().state)
    assert sa.ServiceState.RUNNING not in states
    assert observer.errors == []


class LineObserver(sa.LogObserver):
    def __init__(self):
        self.lines = queue.Queue()
        self.errors = []

    def on_line(self, line):
        self.lines.put(line)

    def on_error(self, message):
        self.errors.append(message)


def test_follow_logs_gives_its_backlog_then_what_is_appended(service):
    mgr = service.manager()
    run(mgr.ensure())
    before = mgr.tail_logs(2)
    assert len(before) == 2, before
    observer = LineObserver()
    handle = mgr.follow_logs(observer, 2)
    try:
        marker = f"appended by pytest {os.getpid()}"
        with open(mgr.log_file(), "a") as log:
            log.write(marker + "\n")
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and marker not in seen:
            try:
                seen.append(observer.lines.get(timeout=0.5))
            except queue.Empty:
                continue
        # The two last lines, then the new one: none lost, none twice.
        assert seen == before + [marker], seen
        assert observer.errors == []
    finally:
        del handle


def test_follow_logs_sees_an_appended_line(service):
    mgr = service.manager()
    run(mgr.ensure())
    observer = LineObserver()
    handle = mgr.follow_logs(observer, 0)
    try:
        # Every line appended once the call has returned is followed: the
        # first one too, written at once, and each exactly once.
        markers = [f"appended by pytest {os.getpid()} #{i}" for i in range(3)]
        for marker in markers:
            with open(mgr.log_file(), "a") as log:
                log.write(marker + "\n")
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < len(markers):
            try:
                line = observer.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.startswith("appended by pytest"):  # not the service's own
                seen.append(line)
        assert seen == markers
        assert observer.errors == []
    finally:
        del handle  # dropping the handle stops the feed
    time.sleep(0.3)
    late = f"after the handle was dropped {os.getpid()}"
    with open(mgr.log_file(), "a") as log:
        log.write(late + "\n")
    time.sleep(1.0)
    rest = []
    while not observer.lines.empty():
        rest.append(observer.lines.get())
    assert late not in rest


def test_missing_program_is_binary_not_found(service):
    mgr = service.manager(program="spfs-autostart-no-such-program")
    with pytest.raises(sa.ServiceError) as info:
        run(mgr.ensure())
    assert info.value.kind == sa.ErrorKind.BINARY_NOT_FOUND, info.value
    assert "spfs-autostart-no-such-program" in info.value.message
    assert "looked in" in info.value.message


def test_exit_at_startup_carries_the_log_tail(service):
    message = "pytest-injected startup failure 7f3a"
    mgr = service.manager(args=["--fail-at-start", message])
    with pytest.raises(sa.ServiceError) as info:
        run(mgr.ensure())
    assert info.value.kind == sa.ErrorKind.EXITED_DURING_STARTUP, info.value
    error = info.value
    assert any(message in line for line in error.log_tail), error.log_tail
    assert error.log_file == mgr.log_file()
    assert service_pids(service.state_dir) == []


def test_bad_config_is_invalid_config(service, tmp_path):
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(endpoint="carrier-pigeon"))
    assert info.value.kind == sa.ErrorKind.INVALID_CONFIG, info.value
    bad = tmp_path / "bad.toml"
    bad.write_text("program = [unclosed\n")
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(config_file=str(bad)))
    assert info.value.kind == sa.ErrorKind.INVALID_CONFIG, info.value
    assert "bad.toml" in info.value.message
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(config_file=str(tmp_path / "missing.toml")))
    assert info.value.kind == sa.ErrorKind.INVALID_CONFIG, info.value


def test_a_field_set_makes_a_bad_variable_for_its_key_no_error(service, monkeypatch):
    # The field wins over the variable, which is then not read at all.
    monkeypatch.setenv("SPFS_AUTOSTART_READY_TIMEOUT_SECS", "abc")
    mgr = sa.ServiceManager(service.config(ready_timeout_secs=5))
    assert mgr.log_file()
    # Without the field, the variable is read and refused, naming it.
    fields = {"ready_timeout_secs": None}
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(**fields))
    assert info.value.kind == sa.ErrorKind.INVALID_CONFIG, info.value
    assert "SPFS_AUTOSTART_READY_TIMEOUT_SECS" in info.value.message


def test_a_failure_carries_its_remedies_as_data(service, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(state_dir="relstate"))
    assert info.value.kind == sa.ErrorKind.INVALID_CONFIG, info.value
    assert info.value.remedies == [sa.Remedy.SET_KEY(key="state_dir")], info.value.remedies
    assert "--" not in info.value.message, "the core names keys, never a CLI flag"
    with pytest.raises(sa.ServiceError) as info:
        sa.ServiceManager(service.config(config_file=str(tmp_path / "missing.toml")))
    assert info.value.remedies == [sa.Remedy.CONFIG_FILE()], info.value.remedies


def test_tail_logs_without_a_log_is_empty(service):
    assert service.manager().tail_logs(10) == []


def test_ensure_from_16_threads_starts_one_service(service):
    mgrs = [service.manager() for _ in range(16)]
    barrier = threading.Barrier(len(mgrs))
    pids, errors = [], []

    def worker(mgr):
        try:
            barrier.wait()
            pids.append(run(mgr.ensure()).pid)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(m,)) for m in mgrs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(pids) == 16 and len(set(pids)) == 1
    assert service_pids(service.state_dir) == [pids[0]]


def test_ensure_from_8_processes_starts_one_service(service):
    import multiprocessing

    from procs import ensure_in_process

    fields = dict(
        program=str(service.program),
        state_dir=str(service.state_dir),
        log_dir=str(service.log_dir),
        ready_timeout_secs=30,
    )
    mgr = service.manager()
    # "spawn": forking a process whose library runtime has threads is unsafe.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        pids = pool.map(ensure_in_process, [fields] * 8)
    assert len(set(pids)) == 1
    assert run(mgr.status()).pid == pids[0]
    assert service_pids(service.state_dir) == [pids[0]]
