"""`train` gives the same run on a plain and a packed dataset, in every mode.

Each case trains the same tiny random student (tests/train/conftest.py) on the same rows,
once stored plain and once packed (`pack_dataset`), and compares `metrics.json`.

What may differ, and by how much: the packed codec stores each teacher log-prob but the
token's best within LOGPROB_BOUND (0.0392 nats) and the tail rounded up to float16
(relative 2^-10), so every teacher probability the losses and the held-out KL read is
within a factor e^±LOGPROB_BOUND of the plain one. A loss, or a KL, that is a sum of
teacher-weighted non-negative terms then moves by at most that factor: relative tolerance
`REL = e^LOGPROB_BOUND - 1` (4 %), plus 1e-4 absolute; the measured gaps are far smaller
(printed with -s). What reads no top-k is compared exactly: SFT's loss curve and the
held-out NLL before training (same init, same tokens), the split and the token counts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distill.codec import LOGPROB_BOUND, pack_dataset
from distill.schemas import TeacherInfo, TeacherRecord
from distill.train import GKDOptions, KDLossConfig, TrainConfig, train_student
from distill.train.config import MODES
from distill.train.divergences import DIVERGENCES
from tests.factories import make_record, write_fake_dataset

REL = math.expm1(LOGPROB_BOUND)
ABS = 1e-4
COMMON = {"max_steps": 3, "batch_size": 4, "eval_every": 2, "heldout_fraction": 0.25}
# case -> (mode, KDLossConfig or GKDOptions fields, dataset): every mode, KD with each divergence.
CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "sft": ("sft", {}, "topk"),
    "kd-forward_kl": ("kd", {"divergence": "forward_kl"}, "topk"),
    "kd-reverse_kl": ("kd", {"divergence": "reverse_kl"}, "topk"),
    "kd-jsd": ("kd", {"divergence": "jsd", "beta": 0.5}, "topk"),
    "kd-sampled_ce": ("kd", {"divergence": "sampled_ce"}, "sampled"),
    "gkd": ("gkd", {"max_new_tokens": 3, "lmbda": 1.0, "beta": 0.5}, "topk"),
}
# Draw counts out of k = 4 per token, cycled: a sampled-targets row (weight 0 is -inf).
_COUNTS = [[2, 1, 1, 0], [4, 0, 0, 0], [1, 1, 1, 1], [3, 1, 0, 0]]


def test_every_mode_and_divergence_has_a_case() -> None:
    assert {mode for mode, _, _ in CASES.values()} == set(MODES)
    kd = {options["divergence"] for mode, options, _ in CASES.values() if mode == "kd"}
    assert kd == set(DIVERGENCES)


def _sampled(record: TeacherRecord, row: int) -> TeacherRecord:
    counts = [_COUNTS[(row + t) % len(_COUNTS)] for t in range(len(record.token_ids))]
    logprobs = [[math.log(c / 4) if c else -math.inf for c in token] for token in counts]
    return record.model_copy(update={"topk_logprobs": logprobs, "tail_mass": [0.0] * len(counts)})


@pytest.fixture(scope="module")
def datasets(
    real_vocab_dataset: Path, real_teacher_info: TeacherInfo, tmp_path_factory
) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("codec_parity")
    records = [
        _sampled(make_record(row=i, n_tokens=4 + i % 5, teacher=real_teacher_info), i)
        for i in range(20)
    ]
    write_fake_dataset(root / "sampled", records, targets="sampled")
    out = {}
    for targets, plain in (("topk", real_vocab_dataset), ("sampled", root / "sampled")):
        out[targets, "plain"] = plain
        out[targets, "packed"] = pack_dataset(plain, root / f"{targets}-packed").out_dir
    return out


def _close(plain: float, packed: float) -> bool:
    return math.isclose(plain, packed, rel_tol=REL, abs_tol=ABS)


@pytest.mark.parametrize("case", list(CASES))
def test_train_matches_on_both_codecs(
    case: str, datasets, tiny_student: Path, teacher_dir: Path, tmp_path: Path
) -> None:
    mode, options, targets = CASES[case]
    extra: dict[str, Any] = {"kd": KDLossConfig(**options)} if mode == "kd" else {}
    if mode == "gkd":
        extra = {"gkd": GKDOptions(**options, teacher=teacher_dir)}
    config = TrainConfig(mode=mode, student=tiny_student, **COMMON, **extra)
    runs = {
        codec: train_student(datasets[targets, codec], tmp_path / codec, config)
        for codec in ("plain", "packed")
    }
    plain, packed = runs["plain"], runs["packed"]
    for key in ("steps", "train_rows", "heldout_rows"):
        assert getattr(packed, key) == getattr(plain, key), key
    del packed.config["dataset_dir"], plain.config["dataset_dir"]
    assert packed.config == plain.config
    assert [s for s, _ in packed.loss_curve] == [s for s, _ in plain.loss_curve]
    for (_, a), (_, b) in zip(plain.loss_curve, packed.loss_curve, strict=True):
        assert math.isfinite(a) and _close(a, b), (plain.loss_curve, packed.loss_curve)
    if mode == "sft":  # SFT's loss reads no top-k: bit for bit the same run
        assert packed.loss_curve == plain.loss_curve
    assert packed.heldout_initial["nll"] == plain.heldout_initial["nll"]  # same init, tokens
    points = [plain.heldout_initial, plain.heldout, *plain.heldout_curve]
    packed_points = [packed.heldout_initial, packed.heldout, *packed.heldout_curve]
    for a, b in zip(points, packed_points, strict=True):
        assert a.keys() == b.keys() and a["tokens"] == b["tokens"] > 0
        for key in ("kl", "nll"):
            assert _close(a[key], b[key]), (key, a, b)
    pairs = zip(plain.loss_curve, packed.loss_curve, strict=True)
    gaps = [abs(b - a) / abs(a) for (_, a), (_, b) in pairs]
    kl_gap = abs(packed.heldout["kl"] - plain.heldout["kl"]) / plain.heldout["kl"]
    print(f"{case}: loss rel gap max {max(gaps):.2e}, held-out KL rel gap {kl_gap:.2e}")
    if targets == "topk" and mode != "sft":
        assert max(gaps) > 0 or kl_gap > 0  # the packed top-k really was read
    assert np.isfinite(packed.heldout["kl"])
