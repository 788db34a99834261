"""Bootstrap intervals against independent computations."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from distill.eval.stats import bootstrap_interval, estimate, grouped_estimates


def loop_bootstrap(values: list[float], seed: int, samples: int) -> tuple[float, float]:
    """The percentile interval written out by hand: one resample at a time, drawn from the
    same generator, the quantiles by sorting (numpy's default 'linear' interpolation)."""
    rng = np.random.default_rng(seed)
    means = sorted(
        sum(values[i] for i in rng.integers(0, len(values), size=len(values))) / len(values)
        for _ in range(samples)
    )

    def quantile(q: float) -> float:
        position = q * (samples - 1)
        below, frac = math.floor(position), position - math.floor(position)
        above = min(below + 1, samples - 1)
        return means[below] + frac * (means[above] - means[below])

    return quantile(0.025), quantile(0.975)


def test_interval_equals_a_resample_by_resample_computation():
    values = [float(x) for x in random.Random(7).choices([0, 1], k=37)]
    low, high = bootstrap_interval(np.array(values), seed=3, samples=500)
    assert (low, high) == pytest.approx(loop_bootstrap(values, 3, 500), abs=1e-12)


def test_interval_agrees_with_the_normal_approximation_on_a_large_sample():
    values = (np.arange(400) % 10 < 3).astype(float)  # p = 0.3, n = 400
    low, high = bootstrap_interval(values, seed=0, samples=4000)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 400)  # Wald interval, +-0.0449
    assert low == pytest.approx(0.3 - half, abs=0.006)
    assert high == pytest.approx(0.3 + half, abs=0.006)


def test_interval_of_a_constant_is_a_point_and_seeds_repeat():
    assert bootstrap_interval(np.ones(12), seed=1) == (1.0, 1.0)
    values = np.random.default_rng(0).random(30)  # shares: continuous, so seeds differ
    assert bootstrap_interval(values, seed=5) == bootstrap_interval(values, seed=5)
    assert bootstrap_interval(values, seed=5) != bootstrap_interval(values, seed=6)


def test_estimate_and_groups_count_by_hand():
    values = np.array([1, 0, 1, 1, 0, 0], float)
    found = estimate(values, seed=0, samples=200)
    assert (found.value, found.count, found.total) == (0.5, 3.0, 6)
    assert found.low <= 0.5 <= found.high
    groups = grouped_estimates(values, list("aabbbc"), ["c", "b", "a", "z"], seed=0, samples=200)
    assert list(groups) == ["c", "b", "a"]  # the order asked for; empty groups left out
    assert [(g.count, g.total) for g in groups.values()] == [(0, 1), (2, 3), (1, 2)]
    assert groups["b"].text().endswith("(2/3)")
