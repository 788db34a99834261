"""Wrong-language responses: the detected language is not the one expected for the row.

The expected language is `by_domain[domain]` when the row's domain is listed, else
`expected` ('en' by default); ISO 639-1 codes as langdetect reports them ('en', 'fr',
'zh-cn', ...). Detection is langdetect (a port of Google's language-detection: character
n-gram profiles of 55 languages shipped inside the wheel, no download), seeded so a re-run
gives the same answer. A row is dropped when the top language differs from the expected
one with probability `score` >= `min_score`; texts with fewer than `min_chars` letters are
not judged (short answers like "B" carry no language), nor texts langdetect can't read.
Code, LaTeX and numbers confuse any detector: keep `min_score` high.
"""

from __future__ import annotations

from functools import cache
from typing import Any, ClassVar, Literal

from pydantic import Field, NonNegativeInt

from distill.curate.base import Drop, RejectReason, RowStep
from distill.curate.text import last_user_message


@cache
def _factory() -> Any:
    try:
        from langdetect import detector_factory
    except ImportError as exc:
        raise ImportError(
            "the language step needs langdetect: pip install 'distill[language]'"
        ) from exc
    detector_factory.init_factory()
    return detector_factory._factory


def detect_language(text: str, seed: int = 0) -> tuple[str, float] | None:
    """(language code, probability) of the most likely language, or None if undecidable."""
    from langdetect.lang_detect_exception import LangDetectException

    detector = _factory().create()
    detector.seed = seed  # langdetect samples n-grams at random: fix it per call
    detector.append(text)
    try:
        best = detector.get_probabilities()[0]
    except (LangDetectException, IndexError):
        return None
    return best.lang, float(best.prob)


class LanguageFilter(RowStep):
    """Drop rows whose text is confidently in another language than expected."""

    name: Literal["language"] = "language"
    columns: ClassVar[tuple[str, ...]] = ("domain", "messages", "response_text")

    expected: str = Field("en", description="language code expected by default")
    by_domain: dict[str, str] = Field(
        default_factory=dict, description="domain -> expected language code, overriding it"
    )
    field: Literal["prompt", "response", "both"] = Field(
        "response", description="judge the response, the last user message, or both joined"
    )
    min_score: float = Field(0.9, gt=0, le=1, description="detector probability to act on")
    min_chars: NonNegativeInt = Field(20, description="shorter texts (in letters) are kept")
    seed: int = Field(0, description="langdetect's sampling seed")

    def filter(self, row: dict[str, Any]) -> Drop | None:
        response = row["response_text"] or ""
        if self.field == "response":
            text = response
        else:
            prompt = last_user_message(row["messages"])
            text = prompt if self.field == "prompt" else prompt + "\n" + response
        if sum(c.isalpha() for c in text) < self.min_chars:
            return None
        expected = self.by_domain.get(row.get("domain") or "", self.expected)
        found = detect_language(text, self.seed)
        if found is None:
            return None
        detected, score = found
        if detected != expected and score >= self.min_score:
            return Drop(
                RejectReason.WRONG_LANGUAGE,
                {"expected": expected, "detected": detected, "score": round(score, 4)},
            )
        return None
