"""The reference service's wire protocol through grpcio, a gRPC stack this
project did not write: health and spfs_vfs.VfsService over the Unix socket."""

import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, run

PROTO_DIR = ROOT / "rust" / "protocol" / "proto"


@pytest.fixture(scope="module")
def vfs_stubs(tmp_path_factory):
    out = tmp_path_factory.mktemp("stubs")
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "spfs_vfs/vfs.proto",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        from spfs_vfs import vfs_pb2, vfs_pb2_grpc
        yield vfs_pb2, vfs_pb2_grpc
    finally:
        sys.path.remove(str(out))


def test_health_status_and_mount_over_the_unix_socket(service, vfs_stubs):
    vfs_pb2, vfs_pb2_grpc = vfs_stubs
    mgr = service.manager()
    status = run(mgr.ensure())
    assert status.endpoint == f"unix://{service.socket}"

    # grpcio derives the :authority from a unix: target, which tonic rejects.
    options = [("grpc.default_authority", "localhost")]
    with grpc.insecure_channel(f"unix:{service.socket}", options=options) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        vfs = vfs_pb2_grpc.VfsServiceStub(channel)
        before = vfs.Status(vfs_pb2.StatusRequest(), timeout=10)
        vfs.Mount(vfs_pb2.MountRequest(root_pid=os.getpid(), env_spec="grpcio-test"), timeout=10)
        after = vfs.Status(vfs_pb2.StatusRequest(), timeout=10)
        assert after.active_mounts == before.active_mounts + 1
        assert any(m.root_pid == os.getpid() for m in after.mounts)

    # The kit turned the mount into a lease on this process.
    leased = run(mgr.status())
    assert any(lease.pid == os.getpid() for lease in leased.leases)
    # status() asks VfsService/Status too: the bindings carry the mount.
    assert any(
        m.root_pid == os.getpid() and m.env_spec == "grpcio-test" and not m.editable
        for m in leased.mounts
    )
