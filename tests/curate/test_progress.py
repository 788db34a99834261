import io
from pathlib import Path

from distill.curate import curate_dataset, default_recipe
from distill.curate.progress import CurateProgress
from tests.factories import make_record, write_fake_dataset


def test_curate_prints_a_line_as_each_step_starts_and_ends(tmp_path: Path) -> None:
    records = [
        make_record(row=0, response="Answer: B"),
        make_record(row=1, response="answer:  B"),  # exact duplicate of row 0
        make_record(row=2, prompt="Which gas do plants take in?", response="Answer: C"),
    ]
    write_fake_dataset(tmp_path / "gen", records)
    recipe = default_recipe()
    out = io.StringIO()
    with CurateProgress(len(recipe.steps), out) as progress:
        result = curate_dataset(tmp_path / "gen", tmp_path / "cur", recipe, progress=progress)
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "curate 1/5 exact_dedup: started",
        f"curate 1/5 exact_dedup: 3 in, 2 kept, dropped exact_duplicate 1, "
        f"{result.steps[0].seconds:.1f}s",
        "curate 2/5 near_dedup: started on 2 rows",
        f"curate 2/5 near_dedup: 2 in, 2 kept, dropped nothing, {result.steps[1].seconds:.1f}s",
    ]
    assert lines[-1].startswith("curate 5/5 domain_cap: 1 in, 1 kept,")  # row 2 is wrong
    assert len(lines) == 2 * len(recipe.steps)
