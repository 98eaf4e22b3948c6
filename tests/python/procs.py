"""Process inspection through /proc (no psutil), and the multiprocessing
worker, which must live in an importable module."""

import asyncio
import os
from pathlib import Path


def service_pids(state_dir) -> list[int]:
    """Reference-service processes whose environment names `state_dir`."""
    want = f"SPFS_AUTOSTART_STATE_DIR={state_dir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"spfs-reference-service" not in cmdline:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if want in environ or str(state_dir).encode() in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def stat_fields(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of `pid`, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces or parentheses.
    rest = text[text.rindex(")") + 2 :].split()
    return rest[0], int(rest[1])


def zombie_children() -> list[int]:
    me = os.getpid()
    zombies = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields and fields[0] == "Z" and fields[1] == me:
                zombies.append(int(entry.name))
    return zombies


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ensure_in_process(config_fields: dict) -> int:
    """multiprocessing worker: ensure and return the service pid."""
    import spfs_autostart as sa

    mgr = sa.ServiceManager(sa.ServiceConfig(**config_fields))
    return asyncio.run(mgr.ensure()).pid
