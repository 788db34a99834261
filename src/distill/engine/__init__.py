"""Where a job runs: in this process (`local`, the default) or on a Ray cluster (`ray`).

The local engine is distill's own batch-wise, bounded-memory loop. The Ray engine runs the
same per-batch work as Ray Data tasks and actors; Ray is an optional extra
(`pip install 'distill[ray]'`), imported only when a job asks for it, so without it nothing
changes. Both engines write the same dataset: the same record ids, reasons and counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EngineKind = Literal["local", "ray"]
ENGINES: tuple[EngineKind, ...] = ("local", "ray")


class EngineError(RuntimeError):
    """The engine can't run: Ray missing, or its cluster unreachable."""


class EngineConfig(BaseModel):
    """Which engine runs a job, and for Ray where its cluster is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EngineKind = Field("local", description="local: this process; ray: a Ray cluster")
    address: str | None = Field(
        None,
        description="Ray cluster address (e.g. 'auto' or 'ray://host:10001'); unset starts a "
        "local cluster on this machine's cores, or joins the one RAY_ADDRESS names",
    )
    num_cpus: int | None = Field(
        None, ge=1, description="cores of a Ray cluster started here (unset: all of them)"
    )

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"


LOCAL = EngineConfig()


def engine_config(kind: str = "local", address: str | None = None) -> EngineConfig:
    """An `EngineConfig` from the CLI's `--engine` and `--ray-address`, checked together."""
    if kind not in ENGINES:
        raise ValueError(f"--engine {kind!r}: expected one of {', '.join(ENGINES)}")
    if address and kind != "ray":
        raise ValueError("--ray-address needs --engine ray")
    return EngineConfig(kind=kind, address=address)  # type: ignore[arg-type]


def require_ray() -> ModuleType:
    """`ray`, or a one-line error that names the extra to install."""
    try:
        import ray.data  # binds `ray` too; the Data library is a separate part of the wheel
    except ImportError as err:
        raise EngineError(
            f"--engine ray needs Ray Data ({err.name} is not installed): pip install 'distill[ray]'"
        ) from err
    return ray


@contextmanager
def ray_session(config: EngineConfig) -> Iterator[ModuleType]:
    """Ray, connected: joins a running session as it is, else starts or joins a cluster for
    the job and shuts the connection down after it."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    address = config.address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(
            address=address,
            num_cpus=None if address else config.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = address or "a local cluster"
        raise EngineError(f"--engine ray: could not start or reach {where}: {err}") from err
    try:
        _quiet_ray_data(ray)
        yield ray
    finally:
        ray.shutdown()


def _quiet_ray_data(ray: ModuleType) -> None:
    # Ray Data prints a progress bar per operator to stderr; distill draws its own progress.
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
