"""Every registered curation step decides the same on a plain and a packed dataset.

The input is real SmolLM2 output (tests/fixtures/smollm2_mmlu.parquet, 75 MMLU prompts x 4
samples, top-20) with a second teacher, near-copies of some questions and a French
response added, so every step has something to drop. The same table is written once
plain and once packed (`encode_table`), curated with the same one-step recipe, and the
outputs compared: kept ids, rejected ids with step, reason and details, every step's
stats and the manifest's counts and stats must be equal, and the packed outputs must be
exactly the plain outputs re-encoded.

Only `mean_entropy` reads the quantised top-k (see `distill.curate.signals`): a row's
value may move by `mean_entropy_bound`, so the test checks that no row lies that close to
a threshold (the decisions are then expected to be equal), compares the values with that
tolerance, and allows the mean_entropy AUROC (which every `confidence` step reports) to
move by the share of (wrong, right) row pairs whose values are that close. Every other
signal and step reads columns both codecs store identically, and is compared exactly.
Embeddings (semantic_dedup) are a function of the text only: they are computed once per
text and reused for the second codec, to keep the test fast.

A step added to `STEP_TYPES` without an entry in `example_configs` fails
`test_every_registered_step_has_an_example`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.codec import decode_topk, encode_table
from distill.curate import curate_dataset
from distill.curate.dedup import SemanticDedup
from distill.curate.recipe import recipe_from_dict
from distill.curate.signals import compute_signals, is_wrong, mean_entropy_bound
from distill.curate.steps import STEP_TYPES
from distill.schemas import (
    RECORD_SCHEMA,
    SamplingParams,
    TeacherInfo,
    make_record_id,
    schema_for,
)
from distill.store import load_manifest, read_table
from distill.store.lineage import default_rejected_dir
from distill.teachers.backend import Generation
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
# SmolLM2's tokenizer: "A" -> 49, " A" -> 330, and so on.
SMOLLM2_LETTERS = {"A": [49, 330], "B": [50, 389], "C": [51, 340], "D": [52, 422]}
CODECS = ("plain", "packed")
# Thresholds sit in gaps of the data's signal values (checked for mean_entropy).
ENTROPY_MAX, ENTROPY_MIN = 1.65, 0.36
MIN_LOGPROB_MIN = -4.0
ANSWER_LOGPROB_MIN = -0.5


def short_enough(row: dict[str, Any]) -> tuple[bool, str]:
    """The user_filter under test: keep responses under 120 characters."""
    return len(row["response_text"]) < 120, f"{len(row['response_text'])} chars"


def example_configs(benchmark: Path) -> dict[str, list[dict[str, Any]]]:
    """One or more configs per registered step; each must drop some rows and keep some."""
    return {
        "exact_dedup": [{}],
        "near_dedup": [{}, {"keep": "most_confident"}],
        "semantic_dedup": [{"keep": "most_confident"}],
        "truncated": [{}],
        "mcq_verify": [{}],
        "math_verify": [{}],
        "match_verify": [{"mode": "regex", "pattern": r"Answer: ([A-D])"}],
        "user_filter": [{"function": "tests.curate.test_codec_parity:short_enough"}],
        "confidence": [
            {"signal": "mean_entropy", "max": ENTROPY_MAX},
            {"signal": "mean_entropy", "min": ENTROPY_MIN},
            {"signal": "min_logprob", "min": MIN_LOGPROB_MIN},
            {"signal": "answer_logprob", "min": ANSWER_LOGPROB_MIN},
            {"signal": "self_consistency", "min": 0.5, "drop_missing": True},
        ],
        "empty": [{}],
        "length": [{"min_tokens": 5, "max_tokens": 30}],
        "repetition": [{"ngram": 2, "max_ratio": 0.1, "min_words": 10}],
        "refusal": [{"phrases": ["answer: b"]}],
        "language": [{"min_chars": 10}],
        "domain_cap": [{"cap": 30}],
        "domain_ratio": [{"ratios": {"human aging": 1, "management": 1}}],
        "domain_token_budget": [{"budget": 400}],
        "domain_temperature": [{"temperature": 0.5, "total": 150}],
        "decontaminate": [{"benchmarks": [str(benchmark)]}],
        "llm_judge": [{"teacher": "fake:judge", "batch_size": 16}],
        "select_teacher": [{"keep": "correct"}, {"keep": "most_confident", "per_prompt": 2}],
    }


def _step_cases() -> list[tuple[str, int]]:
    configs = example_configs(Path("unused"))
    return [(name, i) for name in sorted(configs) for i in range(len(configs[name]))]


def _with_teacher(row: dict[str, Any], model_id: str) -> dict[str, Any]:
    teacher = TeacherInfo(**{**row["teacher"], "model_id": model_id})
    record_id = make_record_id(row["prompt_id"], row["sample_index"], teacher.teacher_id)
    return {**row, "teacher": teacher.model_dump(mode="python"), "record_id": record_id}


def _rows() -> list[dict[str, Any]]:
    rows = pq.read_table(FIXTURE).to_pylist()
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    payload = ("response_text", "token_ids", "topk_ids", "topk_logprobs", "sampled_logprob")
    extra = []
    # A second teacher on 25 prompts: sample s answers as the first teacher's sample s+1.
    for group in list(by_prompt.values())[:25]:
        for s, row in enumerate(group):
            other = group[(s + 1) % len(group)]
            moved = {key: other[key] for key in (*payload, "tail_mass", "finish_reason")}
            extra.append(_with_teacher({**row, **moved}, "SmolLM2-twin"))
    # Near-copies of 5 questions under new prompt ids (case and spacing changed).
    for n, group in enumerate(list(by_prompt.values())[30:35]):
        for row in group[:2]:
            text = row["messages"][-1]["content"]
            copy = {**row, "prompt_id": f"copy{n}", "source_row": 1000 + n}
            copy["messages"] = [{"role": "user", "content": text.replace(" ", "  ").lower()}]
            copy["record_id"] = make_record_id(copy["prompt_id"], row["sample_index"], "x")
            extra.append(copy)
    french = {**rows[0], "prompt_id": "fr", "record_id": make_record_id("fr", 0, "x")}
    french["response_text"] = (
        "La réponse est la suivante, car les femmes sont plus souvent tristes."
    )
    empty = {**rows[1], "prompt_id": "empty", "record_id": make_record_id("empty", 0, "x")}
    empty["response_text"] = " ... "
    math = []
    for n, answer in enumerate(["42", "41"]):  # one right, one wrong
        row = {**rows[2 + n], "prompt_id": "math", "sample_index": n, "reference": "42"}
        row["record_id"] = make_record_id("math", n, "x")
        row["messages"] = [{"role": "user", "content": "What is 6 * 7?"}]
        row["response_text"] = f"6 * 7 = {answer}, so the answer is $\\boxed{{{answer}}}$."
        math.append(row)
    return [*rows, *extra, french, empty, *math]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    plain = pa.Table.from_pylist(_rows(), schema=RECORD_SCHEMA)
    root = tmp_path_factory.mktemp("parity")
    out = {}
    for codec in CODECS:
        out[codec] = root / codec
        write_table_dataset(out[codec], plain, codec, rows_per_shard=150)
    # A benchmark file holding two of the questions, MMLU-style.
    questions = [r["messages"][-1]["content"] for r in plain.slice(0, 9).to_pylist()[::8]]
    out["benchmark"] = root / "mmlu.jsonl"
    out["benchmark"].write_text(
        "".join(json.dumps({"question": q.split("Question: ")[-1]}) + "\n" for q in questions)
    )
    return out


class LengthJudge:
    """A judge whose score depends on the row's text only, so both codecs get the same."""

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return TeacherInfo(
            model_id="length-judge", revision="0", backend="fake", tokenizer_hash="t",
            vocab_size=8, chat_template_hash="c", top_k=top_k, sampling=sampling,
        )  # fmt: skip

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return [len(messages[-1]["content"])]

    def generate(self, prompts, sampling, top_k, seeds, messages=None) -> list[Generation]:
        replies = [f"Score: {1 + n % 5}" if n % 7 else "no idea" for (n,) in prompts]
        return [Generation([], [], [], [], [], "stop", text=reply) for reply in replies]


def test_every_registered_step_has_an_example() -> None:
    assert set(example_configs(Path("b"))) == set(STEP_TYPES), (
        "add the new step to example_configs: it must decide the same on both codecs"
    )


def test_step_columns_exist_in_both_codecs() -> None:
    shared = set(schema_for("plain").names) & set(schema_for("packed").names)
    for name, step in STEP_TYPES.items():
        assert set(step.columns) <= shared, f"{name}: read the top-k with reads_topk"


def _curate(source: Path, out: Path, config: dict[str, Any]) -> dict[str, Any]:
    result = curate_dataset(source, out, recipe_from_dict({"steps": [config]}))
    rejected = read_table(default_rejected_dir(out)).to_pylist()
    manifest = load_manifest(out)
    steps = [{k: v for k, v in s.items() if k != "seconds"} for s in manifest.steps]
    return {
        "kept": read_table(out, columns=["record_id"]).column("record_id").to_pylist(),
        "rejected": [
            (r["record_id"], r["reject_step"], r["reject_reason"], json.loads(r["reject_details"]))
            for r in rejected
        ],
        "steps": steps,
        "counts": manifest.counts,
        "stats": manifest.stats,
        "result_counts": result.counts,
    }


def _assert_close(plain: Any, packed: Any, tols: dict[str, float], where: str = "") -> None:
    """Equal, except floats at a path ending in a key of `tols`: within that tolerance."""
    if isinstance(plain, dict):
        assert isinstance(packed, dict) and plain.keys() == packed.keys(), where
        for key in plain:
            _assert_close(plain[key], packed[key], tols, f"{where}.{key}")
    elif isinstance(plain, list | tuple):
        assert isinstance(packed, list | tuple) and len(plain) == len(packed), where
        for i, (a, b) in enumerate(zip(plain, packed, strict=True)):
            _assert_close(a, b, tols, f"{where}[{i}]")
    elif isinstance(plain, float) and any(where.endswith(key) for key in tols):
        tol = max(t for key, t in tols.items() if where.endswith(key))
        assert packed == pytest.approx(plain, abs=tol), where
    else:
        assert plain == packed, where


@pytest.fixture(scope="module")
def cached_embeddings():
    """SemanticDedup.embeddings, computed once per text for both codecs."""
    seen: dict[str, np.ndarray] = {}
    real = SemanticDedup.embeddings

    def embeddings(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, real(self, new), strict=True))
        return np.stack([seen[t] for t in texts])

    return embeddings


@pytest.mark.parametrize(("name", "index"), _step_cases())
def test_step_decides_the_same_on_both_codecs(
    name: str, index: int, datasets, cached_embeddings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr("distill.teachers.specs.load_teacher", lambda spec, top_k=20: LengthJudge())
    monkeypatch.setattr(SemanticDedup, "embeddings", cached_embeddings)
    config = {"name": name, **example_configs(datasets["benchmark"])[name][index]}
    if name == "confidence" and config["signal"] == "answer_logprob":
        config["letter_tokens"] = SMOLLM2_LETTERS
    out = {codec: _curate(datasets[codec], tmp_path / codec, config) for codec in CODECS}
    plain, packed = out["plain"], out["packed"]
    assert plain["kept"] and plain["rejected"], f"{config}: keeps or drops nothing; not a test"

    tols = {}
    if name == "confidence":
        entropy, bound, auroc_tol = _entropy_tolerances(datasets["plain"])
        tols["mean_entropy.auroc"] = auroc_tol
        if config["signal"] == "mean_entropy":
            threshold = config.get("max", config.get("min"))
            assert np.all(np.abs(entropy - threshold) > bound), "a row sits at the threshold"
            tols["value"] = float(bound.max())
    assert packed["kept"] == plain["kept"]
    _assert_close(plain["rejected"], packed["rejected"], tols, "rejected")
    _assert_close(plain["steps"], packed["steps"], tols, "steps")
    _assert_close(plain["stats"], packed["stats"], tols, "stats")
    assert packed["counts"] == plain["counts"]
    assert packed["result_counts"] == plain["result_counts"]
    # The rows written are the same rows: packed output == plain output re-encoded
    # (details compared above, with the tolerance).
    for sub in ("", "-rejected"):
        written = encode_table(read_table(tmp_path / f"plain{sub}"), "packed")
        packed_rows = read_table(tmp_path / f"packed{sub}")
        if sub:
            written, packed_rows = (
                t.drop_columns(["reject_details"]) for t in (written, packed_rows)
            )
        assert written.equals(packed_rows)


def _entropy_tolerances(dataset: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean_entropy per row, its packing bound, how far its AUROC may move): the share of
    (wrong, right) pairs whose values lie within the sum of their bounds, plus rounding."""
    table = read_table(dataset)
    entropy = compute_signals(table)["mean_entropy"]
    bound = mean_entropy_bound(decode_topk(table))
    wrong = is_wrong(table["response_text"].to_pylist(), table["reference"].to_pylist())
    usable = ~np.isnan(entropy) & ~np.isnan(wrong)
    e, b, w = entropy[usable], bound[usable], wrong[usable].astype(bool)
    close = np.abs(e[w][:, None] - e[~w][None, :]) <= b[w][:, None] + b[~w][None, :]
    return entropy, bound, float(close.sum() / close.size) + 1e-4


def test_mean_entropy_moves_within_its_bound_and_keeps_its_order(datasets) -> None:
    tables = {codec: read_table(datasets[codec]) for codec in CODECS}
    plain, packed = (compute_signals(tables[codec]) for codec in CODECS)
    bound = mean_entropy_bound(decode_topk(tables["plain"]))
    gap = np.abs(packed["mean_entropy"] - plain["mean_entropy"])
    assert np.all(gap <= bound)
    assert gap.max() > 1e-4  # the packed top-k really is rounded: the check is not vacuous
    # Rows further apart than their bounds keep their order.
    h, hp = plain["mean_entropy"], packed["mean_entropy"]
    apart = np.abs(h[:, None] - h[None, :]) > bound[:, None] + bound[None, :]
    assert np.array_equal((h[:, None] < h[None, :])[apart], (hp[:, None] < hp[None, :])[apart])
    for name in ("min_logprob", "self_consistency"):  # read exact columns only
        np.testing.assert_array_equal(packed[name], plain[name])
    decoded = {codec: decode_topk(tables[codec]) for codec in CODECS}
    np.testing.assert_array_equal(decoded["plain"].ids, decoded["packed"].ids)
