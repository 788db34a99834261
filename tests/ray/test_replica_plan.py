"""How many teacher replicas a Ray run starts, and the GPUs each asks for."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from distill.gen.ray_engine import replica_plan
from distill.gen.ray_replica import replica_gpus
from distill.teachers.backend import TeacherUnavailableError


def cluster(**resources: float) -> SimpleNamespace:
    return SimpleNamespace(cluster_resources=lambda: resources)


@pytest.mark.parametrize(
    ("teacher", "options", "gpus"),
    [
        ("vllm:/m", {}, 1.0),
        ("vllm:/m", {"tensor_parallel_size": "4"}, 4.0),
        ("hf:/m", {"device": "cuda:1"}, 1.0),
        ("hf:/m", {}, 0.0),
        ("openai:m@http://x/v1", {"concurrency": "64"}, 0.0),
    ],
)
def test_gpus_a_replica_takes(teacher: str, options: dict, gpus: float) -> None:
    assert replica_gpus(teacher, options) == gpus


def test_one_replica_per_gpu_group_or_cpu_never_more_than_blocks() -> None:
    vllm = SimpleNamespace(teacher="vllm:/m", gpus_per_replica=2.0)
    assert replica_plan(cluster(CPU=64, GPU=8), vllm, blocks=100) == (4, 2.0)
    assert replica_plan(cluster(CPU=64, GPU=8), vllm, blocks=3) == (3, 2.0)
    cpu = SimpleNamespace(teacher="hf:/m", gpus_per_replica=0.0)
    assert replica_plan(cluster(CPU=6), cpu, blocks=100) == (6, 0.0)
    assert replica_plan(cluster(CPU=6), cpu, blocks=2) == (2, 0.0)
    with pytest.raises(TeacherUnavailableError, match="has 1 GPUs, a replica needs 2"):
        replica_plan(cluster(CPU=8, GPU=1), vllm, blocks=10)
