"""`distill report` gives the same figures for a run on plain data and one on packed data.

Both run folders hold the same real SmolLM2 rows (tests/fixtures/smollm2_mmlu.parquet),
one plain and one packed, curated with the default recipe plus near_dedup. Every figure
must match; only what names a dataset differs (path, id, parents, codec, step timings).
Training figures come from `metrics.json`, whose parity tests/train/test_codec_parity.py
checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from distill.curate import curate_dataset
from distill.curate.dedup import NearDedup
from distill.curate.recipe import Recipe, default_recipe
from distill.report import collect_report
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
NAMES_A_DATASET = {"path", "dataset_id", "parents"}


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k not in NAMES_A_DATASET}
    out["params"] = {k: v for k, v in out["params"].items() if k != "codec"}
    out["steps"] = [{k: v for k, v in s.items() if k != "seconds"} for s in out["steps"]]
    return out


def test_report_figures_are_the_same_on_both_codecs(tmp_path: Path) -> None:
    rows = pq.read_table(FIXTURE)
    recipe = Recipe(steps=[*default_recipe(domain_cap=30).steps, NearDedup()])
    reports = {}
    for codec in ("plain", "packed"):
        run = tmp_path / codec
        write_table_dataset(run / "gen", rows, codec)
        curate_dataset(run / "gen", run / "curated", recipe)
        reports[codec] = collect_report([run])
    plain, packed = reports["plain"], reports["packed"]
    assert plain["summary"] == packed["summary"]
    assert plain["summary"]["kept"] and plain["summary"]["rejected"]
    for stage in ("generated", "curated"):
        assert len(plain[stage]) == len(packed[stage]) == 1
        assert _figures(plain[stage][0]) == _figures(packed[stage][0])
    accuracy = plain["curated"][0]["stats"]["accuracy_by_domain"]
    assert accuracy and all(v["graded"] > 0 for v in accuracy.values())
