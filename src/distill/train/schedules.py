"""The schedules that move the KD loss over training: alpha's, and TAID's t.

`scheduled_alpha` gives the KD weight at a point of training (`constant`, or `linear` from
`alpha` to `alpha_end`). TAID (Shing et al., ICLR 2025; the target is
`divergences.interpolated_target`) raises its t from `t_start` towards 1 (the teacher) in
one of two ways: `taid_linear_t`, a linear ramp over training (the paper's non-adaptive
ablation), and `taid_update`, the paper's adaptive rule: a momentum of the loss's relative
change pushes t up faster while the student is still improving quickly, never below the
linear ramp and never above 1. All pure functions of numbers.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

AlphaSchedule = Literal["constant", "linear", "taid", "taid_adaptive"]
ALPHA_SCHEDULES: tuple[str, ...] = ("constant", "linear", "taid", "taid_adaptive")
TAID_SCHEDULES: tuple[str, ...] = ("taid", "taid_adaptive")


def scheduled_alpha(
    schedule: AlphaSchedule, progress: float, alpha: float, alpha_end: float | None = None
) -> float:
    """The KD weight at `progress` in [0, 1] of training.

    `constant` and the TAID schedules keep `alpha`; `linear` goes from `alpha` to `alpha_end`.
    """
    if schedule not in ALPHA_SCHEDULES:
        raise ValueError(f"alpha_schedule must be one of {ALPHA_SCHEDULES}, got {schedule!r}")
    if schedule != "linear":
        return alpha
    if alpha_end is None:
        raise ValueError("the linear alpha schedule needs alpha_end")
    t = min(max(progress, 0.0), 1.0)
    return alpha + (alpha_end - alpha) * t


def taid_linear_t(progress: float, t_start: float = 0.4) -> float:
    """TAID's t on the linear ramp: `t_start` at the first step, 1.0 (the teacher) at the end."""
    done = min(max(progress, 0.0), 1.0)
    return t_start + (1.0 - t_start) * done


class TaidState(NamedTuple):
    """What adaptive TAID carries from one optimiser step to the next."""

    t: float  # the teacher's weight in the interpolated target
    prev_loss: float | None  # the previous step's loss; None before the first step
    momentum: float  # running mean of the loss's relative change


def taid_start(t_start: float = 0.4) -> TaidState:
    """The state before the first step (the paper's default t_start = 0.4)."""
    if not 0.0 <= t_start <= 1.0:
        raise ValueError(f"t_start must be in [0, 1], got {t_start}")
    return TaidState(t=t_start, prev_loss=None, momentum=0.0)


def taid_update(
    state: TaidState,
    loss: float,
    progress: float,
    t_start: float = 0.4,
    step_size: float = 5e-4,
    momentum: float = 0.99,
) -> TaidState:
    """TAID's adaptive rule (Shing et al., 2025, Algorithm 1) after a step whose loss was `loss`.

    relative change d = (prev_loss - loss) / prev_loss, momentum m <- momentum * m +
    (1 - momentum) * d, and t <- min(1, max(linear(progress), t + step_size * sigmoid(m) *
    (1 - t))): t grows faster while the loss still falls fast, slows as the student
    saturates, never drops below the linear ramp from `t_start` (so it ends at 1) and never
    decreases. The first call only records the loss. Defaults are the paper's (alpha = 5e-4,
    beta = 0.99, t_start = 0.4).
    """
    if state.prev_loss is None:
        return state._replace(prev_loss=loss)
    change = (state.prev_loss - loss) / (state.prev_loss + 1e-15)
    m = momentum * state.momentum + (1.0 - momentum) * change
    # sigmoid(m) as 0.5 * (1 + tanh(m / 2)): exp(-m) overflows when a loss blows up
    step = step_size * 0.5 * (1.0 + math.tanh(m / 2.0)) * (1.0 - state.t)
    t = min(1.0, max(taid_linear_t(progress, t_start), state.t + step))
    return TaidState(t=t, prev_loss=loss, momentum=m)
