"""A Ray cluster of its own for a test: a head and worker nodes started by `ray start` on
this machine, each with one CPU, torn down by killing their process groups.

Not `ray stop`: it stops every Ray process on the machine, other sessions' included.
Each node runs `ray start --block` in a session of its own, so the node's processes are
that command's children and one `killpg` ends them (the workers end with their raylet).
Token authentication is on by default in this Ray (2.60): a bare `ray start --head` makes
a token that the worker and the driver then fail to present ("InvalidAuthToken"), so the
test cluster runs with RAY_AUTH_MODE=disabled on loopback, and its drivers get the same
environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"
READY = "Ray runtime started"


def cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    src = str(Path(__file__).resolve().parents[2] / "src")  # workers import distill
    env["PYTHONPATH"] = os.pathsep.join(p for p in [src, env.get("PYTHONPATH")] if p)
    return {**env, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [str(RAY), "start", "--num-cpus", "1", "--block", *args],
            env=cluster_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(node: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while READY not in log.read_text():
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start failed: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def wait_for_nodes(address: str, count: int, seconds: float = 60) -> None:
    """Until the cluster has `count` live nodes (a worker registers after it starts)."""
    probe = (
        "import ray, sys, time; ray.init(address=sys.argv[1], log_to_driver=False)\n"
        "deadline = time.monotonic() + float(sys.argv[3])\n"
        "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]):\n"
        "    assert time.monotonic() < deadline, ray.nodes()\n"
        "    time.sleep(0.2)\n"
    )
    subprocess.run(
        [sys.executable, "-c", probe, address, str(count), str(seconds)],
        env=cluster_env(),
        check=True,
        capture_output=True,
        timeout=seconds + 60,
    )


@contextmanager
def ray_start_cluster(workers: int = 1) -> Iterator[str]:
    """A head and `workers` worker nodes on loopback; yields the address drivers join."""
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="rt"))  # short: Ray's socket paths live under it
    nodes: list[subprocess.Popen] = []
    try:
        head = start_node(
            ["--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--include-dashboard", "false", "--temp-dir", str(logs / "t")],
            logs / "head.log",
        )  # fmt: skip
        nodes.append(head)
        wait_ready(head, logs / "head.log")
        address = f"127.0.0.1:{port}"
        for index in range(workers):
            log = logs / f"worker{index}.log"
            nodes.append(start_node(["--address", address, "--node-ip-address", "127.0.0.1"], log))
            wait_ready(nodes[-1], log)
        wait_for_nodes(address, 1 + workers)
        yield address
    finally:
        # SIGKILL: on SIGTERM a node drains for 30 s first; a test cluster has nothing to keep.
        for node in reversed(nodes):
            with suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        shutil.rmtree(logs, ignore_errors=True)
