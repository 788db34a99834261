"""Check answers against the reference: math expressions or strings.

- `math_verify`: parses the reference and the response with Hugging Face's `math-verify`
  (LaTeX, \\boxed{}, plain expressions) and compares them symbolically, so "1/2",
  "0.5" and "\\frac{1}{2}" agree;
- `match_verify`: `exact` (the whole response equals the reference), `normalised`
  (casefolded, punctuation and whitespace collapsed) or `regex` (the pattern's first group,
  or whole match, found last in the response, normalised, equals the normalised reference).

Rows without a reference pass `math_verify` and `match_verify` untouched.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from distill.curate.base import Drop, RejectReason, RowStep

_WORD = re.compile(r"\w+")


def normalise_answer(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


class MathVerify(RowStep):
    name: Literal["math_verify"] = "math_verify"
    columns: ClassVar[tuple[str, ...]] = ("response_text", "reference")

    timeout_seconds: int = Field(5, ge=1, description="per parse / verify; 0 is not allowed")

    def filter(self, row: dict[str, Any]) -> Drop | None:
        from math_verify import parse, verify  # sympy import takes ~1 s; only when used

        reference = row["reference"]
        if reference is None or not reference.strip():
            return None
        gold = parse(_as_math(reference), parsing_timeout=self.timeout_seconds)
        answer = parse(row["response_text"] or "", parsing_timeout=self.timeout_seconds)
        if not answer:
            return Drop(RejectReason.NO_ANSWER_FOUND, {"reference": reference})
        if verify(gold, answer, timeout_seconds=self.timeout_seconds):
            return None
        return Drop(
            RejectReason.WRONG_ANSWER,
            {"extracted": str(answer[-1]), "reference": reference, "rule": "math_verify"},
        )


def _as_math(reference: str) -> str:
    # A bare reference ("1/2", "\\sqrt{2}") only parses wrapped as LaTeX math.
    stripped = reference.strip()
    return stripped if "$" in stripped else f"${stripped}$"


class MatchVerify(RowStep):
    name: Literal["match_verify"] = "match_verify"
    columns: ClassVar[tuple[str, ...]] = ("response_text", "reference")

    mode: Literal["exact", "normalised", "regex"] = Field("normalised")
    pattern: str | None = Field(
        None, description="regex mode: finds the answer; group 1 if it has groups"
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a valid regex: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _regex_needs_pattern(self) -> MatchVerify:
        if self.mode == "regex" and self.pattern is None:
            raise ValueError("mode 'regex' needs a pattern")
        return self

    def filter(self, row: dict[str, Any]) -> Drop | None:
        reference, response = row["reference"], row["response_text"] or ""
        if reference is None:
            return None
        if self.mode == "exact":
            extracted = response
            ok = response == reference
        elif self.mode == "normalised":
            extracted = response
            ok = normalise_answer(response) == normalise_answer(reference)
        else:
            assert self.pattern is not None
            matches = list(re.finditer(self.pattern, response))
            if not matches:
                return Drop(RejectReason.NO_ANSWER_FOUND, {"reference": reference})
            last = matches[-1]
            extracted = last.group(1) if last.re.groups else last.group(0)
            ok = normalise_answer(extracted or "") == normalise_answer(reference)
        if ok:
            return None
        return Drop(
            RejectReason.WRONG_ANSWER,
            {"extracted": extracted[:200], "reference": reference, "rule": self.mode},
        )
