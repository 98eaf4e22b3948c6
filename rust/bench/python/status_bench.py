"""Time ServiceManager.status() through the generated uniffi bindings.

Run by spfs-autostart-bench (row 6) as
    PYTHONPATH=<dir of the generated spfs_autostart.py> \
    SPFS_AUTOSTART_CONFIG=<sandbox config.toml> python3 status_bench.py N
Prints one per-call time in seconds per line (after 20 warm-up calls). The
manager is built with with_defaults(), which reads SPFS_AUTOSTART_CONFIG like
the CLI; status() is async in the bindings, so every call is awaited on one
asyncio loop, as a Python embedder would.
"""

import asyncio
import sys
import time

import spfs_autostart


async def main(n: int) -> None:
    manager = spfs_autostart.ServiceManager.with_defaults()
    for _ in range(20):
        await manager.status()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await manager.status()
        samples.append(time.perf_counter() - start)
    sys.stdout.write("\n".join(f"{s:.9f}" for s in samples) + "\n")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
