"""An FFI host (here Python, whose executable lives in
/usr/bin or .venv/bin) finds the service program next to the library it
loaded, and says where it looked when the program is not there."""

import os
import sys

import pytest

import spfs_autostart as sa
from conftest import HERE, run
from procs import service_pids


@pytest.fixture
def path_without_target(monkeypatch):
    """PATH as a user has it: without the build dirs."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")


def loaded_library_dir():
    """Where the bindings loaded the library from (the generated dir)."""
    return HERE / "generated"


def test_default_program_is_found_next_to_the_loaded_library(service, path_without_target):
    # The default config's program off macOS: the bare name, not a path.
    assert sys.platform != "darwin"
    mgr = service.manager(program="spfs-reference-service")
    status = run(mgr.ensure())
    assert status.state == sa.ServiceState.RUNNING
    assert service_pids(service.state_dir) == [status.pid]
    exe = os.readlink(f"/proc/{status.pid}/exe")
    # The library in generated/ links to target/debug, where the service is.
    real_lib_dir = os.path.dirname(
        os.path.realpath(next(loaded_library_dir().glob("libspfs_autostart*")))
    )
    assert os.path.dirname(exe) == real_lib_dir


def test_binary_not_found_names_the_library_dir(service, path_without_target):
    mgr = service.manager(program="spfs-autostart-no-such-program")
    with pytest.raises(sa.ServiceError) as info:
        run(mgr.ensure())
    assert info.value.kind == sa.ErrorKind.BINARY_NOT_FOUND, info.value
    message = info.value.message
    assert str(loaded_library_dir() / "spfs-autostart-no-such-program") in message, message
