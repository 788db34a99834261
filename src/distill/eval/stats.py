"""Rates with bootstrap confidence intervals, over all questions or a group of them.

An MMLU slice small enough to run on a CPU has tens of questions per category, where one
question moves accuracy by several points; a rate without its interval invites reading
noise as a difference. `estimate` gives the rate and a percentile bootstrap interval.

Each interval draws its resamples from a fresh `numpy.random.default_rng(seed)`, so it
does not depend on what was computed before it, and every model evaluated on the same
questions is resampled with the same question indices (a paired bootstrap): the models'
intervals move together with the draw of questions, not with independent noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95


class Estimate(BaseModel):
    """A rate over `total` questions (`count` of them counted, or the mean of per-question
    shares) and its bootstrap interval [low, high]."""

    model_config = ConfigDict(extra="forbid")
    value: float
    low: float
    high: float
    count: float  # the numerator: questions counted, or the sum of per-question shares
    total: int

    def text(self) -> str:
        """'0.375 [0.250, 0.500] (3/8)': the rate, its interval and the counts."""
        count = f"{self.count:g}" if self.count == int(self.count) else f"{self.count:.2f}"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] ({count}/{self.total})"


def bootstrap_interval(
    values: np.ndarray,
    seed: int,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (one per question)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, values.size, size=(samples, values.size))
    means = values[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def estimate(
    values: Sequence[float] | np.ndarray, seed: int, samples: int = BOOTSTRAP_SAMPLES
) -> Estimate:
    """The mean of per-question values (1/0 for a count, a share in [0, 1] otherwise)."""
    array = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_interval(array, seed, samples)
    total = int(array.size)
    return Estimate(
        value=float(array.mean()) if total else float("nan"),
        low=low,
        high=high,
        count=float(array.sum()),
        total=total,
    )


def grouped_estimates(
    values: np.ndarray, groups: Sequence[str], order: Sequence[str], seed: int, samples: int
) -> dict[str, Estimate]:
    """`estimate` over the questions of each group in `order` that has any."""
    labels = np.asarray(groups, dtype=object)
    return {
        name: estimate(values[labels == name], seed, samples)
        for name in order
        if (labels == name).any()
    }
