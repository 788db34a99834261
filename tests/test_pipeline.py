"""The spine end to end on the real embedded teacher, for both top-k codecs:
gen -> curate -> train (KD) -> report, each through its library function."""

import json
from pathlib import Path

import pytest

from distill.curate import Recipe, curate_dataset
from distill.curate.dedup import ExactDedup
from distill.gen.runner import generate_dataset
from distill.report import collect_report
from distill.schemas import SamplingParams
from distill.store import load_manifest
from distill.train import TrainConfig, train_student

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("p") / "prompts.jsonl"
    questions = [
        "Name a fruit.",
        "Name a colour.",
        "Name an animal.",
        "Name a planet.",
        "Name a fruit.",
    ]  # one repeat, for curation to drop
    path.write_text("".join(json.dumps({"prompt": q}) + "\n" for q in questions))
    return path


def run_spine(prompts: Path, out: Path, codec: str, embedded_teacher) -> dict:
    generate_dataset(
        prompts,
        out / "gen",
        teacher=embedded_teacher,
        top_k=5,
        codec=codec,
        sampling=SamplingParams(max_new_tokens=8),
        progress=False,
    )
    curated = curate_dataset(out / "gen", out / "curated", Recipe(steps=[ExactDedup()]))
    assert curated.counts["rejected"] == 1  # greedy: the repeated prompt repeats its answer
    for name in ("curated", "curated-rejected"):
        assert load_manifest(out / name).codec == codec
    config = TrainConfig(mode="kd", max_steps=2, batch_size=2, heldout_fraction=0.25)
    result = train_student(out / "curated", out / "kd", config)
    return {
        "loss": result.loss_curve,
        "kl": result.heldout["kl"],
        "report": collect_report([out])["summary"],
    }


def test_plain_and_packed_datasets_train_alike(
    prompts: Path, tmp_path: Path, embedded_teacher
) -> None:
    plain = run_spine(prompts, tmp_path / "plain", "plain", embedded_teacher)
    packed = run_spine(prompts, tmp_path / "packed", "packed", embedded_teacher)
    assert plain["report"]["generated_records"] == packed["report"]["generated_records"] == 5
    assert plain["report"]["kept"] == 4
    # 8-bit log-probs: the same run within the codec's bound (0.04 nats per entry)
    for (step_a, loss_a), (step_b, loss_b) in zip(plain["loss"], packed["loss"], strict=True):
        assert step_a == step_b and loss_a == pytest.approx(loss_b, abs=0.05)
    assert plain["kl"] == pytest.approx(packed["kl"], abs=0.05)
