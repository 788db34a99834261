"""The report's row browser data and its charts' figures, against independent computations.

The rows are real SmolLM2 rows (tests/fixtures/smollm2_mmlu.parquet), curated with the
default recipe, once per codec: the sample and the per-token figures must be the same.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.codec import LOGPROB_BOUND
from distill.curate import curate_dataset
from distill.curate.recipe import default_recipe
from distill.curate.signals import compute_signals, is_wrong, signal_aurocs
from distill.report import collect_report, default_report_path, write_report
from distill.report.browser import browser_html, entropy_shade
from distill.report.charts import curves_figure, domains_figure
from distill.report.distributions import collect_distributions
from distill.report.page import chance_level
from distill.report.rows import SampleConfig, sample_key, sample_rows
from distill.report.tokens import token_strings
from distill.store import load_manifest, read_table
from distill.store.lineage import rejected_path
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
CONFIG = SampleConfig(per_group=3, max_tokens=1000, top_alternatives=20)


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rows = pq.read_table(FIXTURE).slice(0, 160)
    out = {}
    for codec in ("plain", "packed"):
        run = tmp_path_factory.mktemp(codec)
        write_table_dataset(run / "gen", rows, codec)
        curate_dataset(run / "gen", run / "curated", default_recipe(domain_cap=30))
        out[codec] = run / "curated"
    return out


def _expected_sample(ids: list[str], n: int) -> list[str]:
    return sorted(ids, key=sample_key)[:n]


def test_sample_is_deterministic_and_taken_per_reason(curated: dict[str, Path]) -> None:
    dataset = curated["plain"]
    groups = sample_rows(dataset, CONFIG)
    kept = read_table(dataset).column("record_id").to_pylist()
    rejected = read_table(rejected_path(dataset, load_manifest(dataset)))
    reasons = sorted(set(rejected.column("reject_reason").to_pylist()))
    assert len(reasons) >= 2 and list(groups) == ["kept", *reasons]
    assert [r["record_id"] for r in groups["kept"]] == _expected_sample(kept, 3)
    for reason in reasons:
        of_reason = rejected.filter(pc.equal(rejected.column("reject_reason"), reason))
        expected = _expected_sample(of_reason.column("record_id").to_pylist(), 3)
        assert [r["record_id"] for r in groups[reason]] == expected
        assert {r["reason"] for r in groups[reason]} == {reason}
    assert sample_rows(dataset, CONFIG) == groups  # the same rows, the same figures, every run


def _plain_topk(dataset: Path, record_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = read_table(dataset)
    if record_id not in table.column("record_id").to_pylist():
        table = read_table(rejected_path(dataset, load_manifest(dataset)))
    row = table.filter(pc.equal(table.column("record_id"), record_id)).to_pylist()[0]
    return (
        np.array(row["topk_ids"]),
        np.array(row["topk_logprobs"], dtype=np.float32).astype(np.float64),
        np.array(row["tail_mass"], dtype=np.float32).astype(np.float64),
    )


def test_token_shading_is_the_entropy_of_the_stored_topk(curated: dict[str, Path]) -> None:
    dataset = curated["plain"]
    groups = sample_rows(dataset, CONFIG)
    for rows in groups.values():
        for row in rows:
            ids, logp, tail = _plain_topk(dataset, row["record_id"])
            expected = -(np.exp(logp) * logp).sum(axis=1) - np.where(
                tail > 0, tail * np.log(np.maximum(tail, 1e-300)), 0.0
            )
            got = np.array([t["entropy"] for t in row["tokens"]])
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
            top = [[i for i, _ in t["top"]] for t in row["tokens"]]
            assert top == ids.tolist()  # stored in descending order: the same order
            probs = np.array([[p for _, p in t["top"]] for t in row["tokens"]])
            np.testing.assert_allclose(probs, np.exp(logp), rtol=1e-6)
    page = browser_html(groups, token_strings(None, [0]) | _all_ids(groups), top_k=20)
    shown = [float(v) for v in re.findall(r"data-e='([^']+)'", page)]
    all_tokens = [t for rows in groups.values() for r in rows for t in r["tokens"]]
    np.testing.assert_allclose(shown, [t["entropy"] for t in all_tokens], rtol=1e-5)
    alphas = [float(a) for a in re.findall(r"background:rgba\(235,130,20,([0-9.]+)\)", page)]
    expected_alpha = [min(t["entropy"] / math.log(21), 1.0) for t in all_tokens]
    np.testing.assert_allclose(alphas, expected_alpha, atol=5e-4)


def test_hover_lists_the_best_alternatives_and_sums_the_rest(curated: dict[str, Path]) -> None:
    dataset = curated["plain"]
    groups = sample_rows(dataset, SampleConfig(per_group=1, top_alternatives=3))
    for rows in groups.values():
        (row,) = rows
        ids, logp, _ = _plain_topk(dataset, row["record_id"])
        for token, top_ids, top_logp in zip(row["tokens"], ids, logp, strict=True):
            assert [i for i, _ in token["top"]] == top_ids[:3].tolist()
            assert token["rest"] == pytest.approx(np.exp(top_logp[3:]).sum(), abs=1e-9)


def _all_ids(groups: dict) -> dict[int, str]:
    ids = [i for rows in groups.values() for r in rows for t in r["tokens"]
           for i in [t["id"], *(a for a, _ in t["top"])]]  # fmt: skip
    return token_strings(None, ids)


def test_both_codecs_show_the_same_rows(curated: dict[str, Path]) -> None:
    plain, packed = (sample_rows(curated[c], CONFIG) for c in ("plain", "packed"))
    assert list(plain) == list(packed)
    for group in plain:
        for a, b in zip(plain[group], packed[group], strict=True):
            assert a["record_id"] == b["record_id"] and a["reason"] == b["reason"]
            assert [t["id"] for t in a["tokens"]] == [t["id"] for t in b["tokens"]]
            assert [t["logprob"] for t in a["tokens"]] == [t["logprob"] for t in b["tokens"]]
            ea = np.array([t["entropy"] for t in a["tokens"]])
            eb = np.array([t["entropy"] for t in b["tokens"]])
            # packing moves each log-prob by at most LOGPROB_BOUND; 20 entries and the tail
            assert np.abs(ea - eb).max() < 21 * 2 * LOGPROB_BOUND


def test_entropy_shade_spans_zero_to_the_most_a_topk_can_hold() -> None:
    assert entropy_shade(0.0, 20) == 0.0
    assert entropy_shade(math.log(21), 20) == 1.0
    assert entropy_shade(math.log(21) / 2, 20) == pytest.approx(0.5)


def test_chance_level_comes_from_the_recipe_letters() -> None:
    assert chance_level(None) == 0.25  # MMLU's four options
    five = {"params": {"recipe": {"steps": [{"name": "mcq_verify", "letters": "ABCDE"}]}}}
    assert chance_level(five) == 0.2
    figure = domains_figure({"a": 4}, {"a": 2}, {"a": 0.5}, chance_level(five))
    accuracy_axes = figure.axes[1]
    (line,) = accuracy_axes.lines
    assert list(line.get_xdata()) == [0.2, 0.2]
    assert accuracy_axes.get_xlim() == (0.0, 1.0)


def test_curves_start_both_axes_at_zero() -> None:
    figure = curves_figure([("held-out KL", "KL", {"kd": [[10, 4.6], [20, 4.4]]})])
    (axes,) = figure.axes
    assert axes.get_ylim()[0] == 0.0 and axes.get_xlim()[0] == 0.0
    assert axes.get_ylim()[1] > 4.6
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("step", "KL")


def test_token_strings_without_a_tokenizer_show_ids() -> None:
    assert token_strings(None, [7, 3, 7]) == {3: "#3", 7: "#7"}


def test_report_goes_beside_the_dataset_never_inside(curated: dict[str, Path]) -> None:
    dataset = curated["plain"]
    assert default_report_path([dataset]) == dataset.resolve().parent / "report.html"
    report = collect_report([dataset])
    with pytest.raises(ValueError, match="inside the dataset"):
        write_report(report, dataset / "report.html")
    gen = dataset.parent / "gen"
    with pytest.raises(ValueError, match="inside the dataset"):
        write_report(report, gen / "sub" / "report.html")  # the parent is an input too


def test_cli_writes_beside_the_dataset_and_refuses_inside(curated: dict[str, Path]) -> None:
    dataset = curated["packed"]
    runner = CliRunner()
    inside = runner.invoke(app, ["report", str(dataset), "--out", str(dataset / "r.html")])
    assert inside.exit_code == 2
    assert " ".join(inside.output.split()).startswith(f"error: {dataset / 'r.html'}: inside")
    rejected = rejected_path(dataset, load_manifest(dataset))
    inside = runner.invoke(app, ["report", str(dataset), "--out", str(rejected / "r.html")])
    assert inside.exit_code == 2 and not (rejected / "r.html").exists()
    done = runner.invoke(app, ["report", str(dataset), "--rows", "2"])
    assert done.exit_code == 0, done.output
    page = (dataset.parent / "report.html").read_text()
    sample = sample_rows(dataset, SampleConfig(per_group=2))
    assert page.count("<article class='row'>") == sum(len(rows) for rows in sample.values())
    assert sum(len(rows) for rows in sample.values()) > len(sample)  # 2 where a group has 2


def test_distributions_cover_every_row_curation_read(curated: dict[str, Path]) -> None:
    dataset = curated["plain"]
    gen = read_table(dataset.parent / "gen")
    dist = collect_distributions(dataset, top_k=20)
    # the signals over kept + rejected are those over the generated rows, in any order
    wrong = is_wrong(gen.column("response_text").to_pylist(), gen.column("reference").to_pylist())
    assert dist.aurocs == signal_aurocs(compute_signals(gen), wrong)
    assert dist.aurocs["mean_entropy"]["n"] == gen.num_rows
    tokens = pc.sum(pc.list_value_length(gen.column("token_ids"))).as_py()
    assert sum(int(g.entropy_counts.sum()) for g in dist.groups.values()) == tokens
    kept, rejected = dist.groups["kept"], dist.groups["rejected"]
    assert kept.length_array().size == read_table(dataset).num_rows
    assert kept.length_array().size + rejected.length_array().size == gen.num_rows
