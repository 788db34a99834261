from __future__ import annotations

import importlib.util

import pyarrow as pa
import pytest

from distill.curate.base import RejectReason
from distill.curate.language import LanguageFilter
from distill.curate.recipe import recipe_from_dict

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("langdetect") is None,
    reason="pip install 'distill[language]' (langdetect)",
)

EN = "The mitochondria is the powerhouse of the cell and produces most of its energy."
FR = "La mitochondrie est la centrale énergétique de la cellule et produit son énergie."
DE = "Die Mitochondrien sind die Kraftwerke der Zelle und erzeugen den größten Teil der Energie."


def _table(responses: list[str], domains: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "domain": domains,
            "messages": [[{"role": "user", "content": "q"}]] * len(responses),
            "response_text": responses,
        }
    )


def test_wrong_language_dropped_with_details() -> None:
    table = _table([EN, FR, DE, "B", ""], [None] * 5)
    decisions = LanguageFilter().decide(table)
    assert decisions[0] is None and decisions[3] is None and decisions[4] is None
    for drop, code in ((decisions[1], "fr"), (decisions[2], "de")):
        assert drop is not None and drop.reason is RejectReason.WRONG_LANGUAGE
        assert drop.details["expected"] == "en" and drop.details["detected"] == code
        assert 0.9 <= drop.details["score"] <= 1.0


def test_expected_language_per_domain() -> None:
    table = _table([FR, FR, EN], ["french", "math", "french"])
    decisions = LanguageFilter(by_domain={"french": "fr"}).decide(table)
    assert decisions[0] is None
    assert decisions[1] is not None and decisions[1].details["expected"] == "en"
    assert decisions[2] is not None and decisions[2].details == {
        "expected": "fr",
        "detected": "en",
        "score": decisions[2].details["score"],
    }
    again = LanguageFilter(by_domain={"french": "fr"}).decide(table)
    assert again == decisions  # seeded: the same answer every run


def test_recipe_validates_language_keys() -> None:
    recipe = recipe_from_dict({"steps": [{"name": "language", "by_domain": {"x": "de"}}]})
    assert recipe.steps[0] == LanguageFilter(by_domain={"x": "de"})
    with pytest.raises(ValueError, match="expect"):
        recipe_from_dict({"steps": [{"name": "language", "expect": "de"}]})
