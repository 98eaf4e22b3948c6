"""A host process (this pytest) that ensures and stops the service many times
keeps no zombies and leaks no descriptors."""

import time

import spfs_autostart as sa
from conftest import run
from procs import open_fds, service_pids, zombie_children

CYCLES = 20
# The library's runtime, its I/O driver and a cached channel may open a few
# descriptors that live for the whole process.
FD_SLACK = 8


def test_many_cycles_leave_no_zombies_and_no_fds(service):
    mgr = service.manager()
    # Warm up: the runtime and its threads exist from here on.
    run(mgr.ensure())
    run(mgr.stop())
    fds_before = open_fds()

    pids = set()
    for _ in range(CYCLES):
        status = run(mgr.ensure())
        assert status.state == sa.ServiceState.RUNNING
        pids.add(status.pid)
        assert run(mgr.stop()) == sa.StopOutcome.STOPPED

    assert len(pids) == CYCLES, "each cycle starts a new service"
    assert service_pids(service.state_dir) == []
    # The reaper may need a moment after the last stop.
    deadline = time.monotonic() + 5
    while zombie_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zombie_children() == []
    assert open_fds() <= fds_before + FD_SLACK, (fds_before, open_fds())
