from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from distill.curate.base import RejectReason
from distill.curate.decontaminate import BenchmarkIndex, Decontaminate, normalized_words
from distill.curate.recipe import recipe_from_dict

QUESTION = (
    "Which of the following best describes the role of the mitochondria in a eukaryotic "
    "cell during aerobic respiration?"
)
OPTIONS = ["It stores genetic material", "It produces most of the ATP of the cell"]


def _table(prompts: list[str], responses: list[str]) -> pa.Table:
    return pa.table(
        {
            "messages": [[{"role": "user", "content": p}] for p in prompts],
            "response_text": responses,
        }
    )


@pytest.fixture
def mmlu(tmp_path: Path) -> Path:
    path = tmp_path / "mmlu.jsonl"
    rows = [
        {"question": "What is two plus two?", "choices": ["3", "4"], "answer": 1},
        {"question": QUESTION, "choices": OPTIONS, "answer": 1},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_normalisation_ignores_case_punctuation_and_whitespace() -> None:
    assert normalized_words("  Hello,\n\tWORLD!  it's") == ["hello", "world", "it", "s"]


def test_prompt_containing_a_benchmark_question_is_dropped_with_details(mmlu: Path) -> None:
    # Reformatted: a template around it, other case, other punctuation and line breaks.
    prompt = "Answer the question.\n\n" + QUESTION.upper().replace(" ", "\n  ") + "\nA. ..."
    table = _table([prompt, "Tell me about cells."], ["B", "Cells are small."])
    step = Decontaminate(benchmarks=[str(mmlu)])
    decisions = step.decide(table)
    assert decisions[1] is None
    drop = decisions[0]
    assert drop is not None and drop.reason is RejectReason.CONTAMINATED
    assert drop.details["benchmark"] == str(mmlu)
    assert drop.details["line"] == 2
    assert drop.details["field"] == "prompt"
    assert len(drop.details["ngram"].split()) == 13
    assert drop.details["ngram"] in " ".join(normalized_words(QUESTION))


def test_twelve_shared_words_are_not_enough(mmlu: Path) -> None:
    twelve = " ".join(QUESTION.split()[:12])
    table = _table(["x"], [twelve + " and then something else entirely"])
    assert Decontaminate(benchmarks=[str(mmlu)]).decide(table) == [None]
    assert Decontaminate(benchmarks=[str(mmlu)], ngram=12).decide(table)[0] is not None


def test_field_choice_and_short_items(mmlu: Path) -> None:
    table = _table(["q"], ["The answer: it produces most of the ATP of the cell."])
    # The option has 9 words: shorter than 13, at least min_words=8, so it must match whole.
    drop = Decontaminate(benchmarks=[str(mmlu)]).decide(table)[0]
    assert drop is not None and drop.details["field"] == "response"
    assert drop.details["ngram"] == "it produces most of the atp of the cell"
    assert Decontaminate(benchmarks=[str(mmlu)], field="prompt").decide(table) == [None]
    assert Decontaminate(benchmarks=[str(mmlu)], min_words=10).decide(table) == [None]


def test_plain_text_benchmark_and_summary_counts(tmp_path: Path, mmlu: Path) -> None:
    plain = tmp_path / "gsm.txt"
    line = "Natalia sold clips to 48 of her friends in April and then she sold half as many"
    plain.write_text("\n" + line + "\n")
    table = _table(
        ["q", "q", "q", "q"],
        [line, line + " again", QUESTION, "clean"],
    )
    step = Decontaminate(benchmarks=[str(mmlu), str(plain)], field="response")
    decisions = step.decide(table)
    assert [d is not None for d in decisions] == [True, True, True, False]
    assert decisions[0].details["line"] == 2  # 1-based, blank lines counted
    summary = step.summarize(table, decisions)
    assert summary["stats"]["contamination"] == {
        str(mmlu): {"rows": 1, "benchmark_lines": 1, "short_items_skipped": 4},
        str(plain): {"rows": 2, "benchmark_lines": 1, "short_items_skipped": 0},
    }


def test_index_holds_each_ngram_once() -> None:
    index = BenchmarkIndex(ngram=3, min_words=2)
    index.add_item(["a", "b", "c", "d"], "f", 1)
    index.add_item(["b", "c", "d"], "f", 2)
    assert len(index.grams) == 2
    assert index.first_match("x b c d y") == ("f", 1, "b c d")


def test_missing_file_and_bad_json(tmp_path: Path) -> None:
    table = _table(["q"], ["r"])
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        Decontaminate(benchmarks=[str(tmp_path / "nope.jsonl")]).decide(table)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{oops\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        Decontaminate(benchmarks=[str(bad)]).decide(table)


def test_recipe_validates_decontaminate_keys(mmlu: Path) -> None:
    recipe = recipe_from_dict({"steps": [{"name": "decontaminate", "benchmarks": [str(mmlu)]}]})
    assert recipe.steps[0] == Decontaminate(benchmarks=[str(mmlu)])
    with pytest.raises(ValueError, match="benchmarks"):
        recipe_from_dict({"steps": [{"name": "decontaminate"}]})
    with pytest.raises(ValueError, match="ngrams"):
        recipe_from_dict({"steps": [{"name": "decontaminate", "benchmarks": ["x"], "ngrams": 8}]})


def test_runner_puts_counts_in_the_manifest(tmp_path: Path) -> None:
    from distill.curate import Recipe, curate_dataset
    from tests.factories import make_record, write_fake_dataset

    leaked = "The quick brown fox jumps over the lazy dog while the farmer sleeps in the barn"
    write_fake_dataset(
        tmp_path / "gen",
        [make_record(row=0, response=leaked + ". Answer: B"), make_record(row=1)],
    )
    bench = tmp_path / "bench.txt"
    bench.write_text(leaked + "\n")
    recipe = Recipe(steps=[Decontaminate(benchmarks=[str(bench)])])
    result = curate_dataset(tmp_path / "gen", tmp_path / "out", recipe)
    assert result.counts["dropped_contaminated"] == 1
    assert result.kept_manifest.stats["contamination"][str(bench)]["rows"] == 1
