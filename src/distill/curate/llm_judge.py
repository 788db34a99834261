"""Ask a teacher to grade each row against a rubric; drop rows it scores low (optional, slow).

    - name: llm_judge
      teacher: hf:embedded        # any `--teacher` spec: hf:PATH, vllm:DIR, openai:MODEL@URL
      min_score: 3                # drop rows scored below this
      batch_size: 8
      max_new_tokens: 48
      # rubric: "...{prompt}...{response}... Score: N"   (both placeholders are filled in)

The judge is loaded once per run of the step and decodes greedily with a fixed seed per
row. Its reply is parsed for a score (`Score: 4`, `4/5`, `4 out of 5`, or a bare `4`);
a reply with no score in 1..max_score is dropped as `judge_unparsed` with the raw reply
in the details (or kept and counted, with `keep_unparsed`), never treated as if scored.
A row whose judge request failed after the backend's retries (an API timeout, say) is
dropped as `judge_failed` with the failure's kind and reason (kept with `keep_unparsed`):
it was never judged, and a rerun of the recipe asks again.
The step summary holds the judge's id, the score histogram and mean, and — when the rows
carry multiple-choice references — `stats["judge_auroc"]`: how well a low score predicts
a wrong answer (0.5 = chance), which reaches the curated manifest's stats.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, PrivateAttr, field_validator, model_validator

from distill.curate.base import Decisions, Drop, RejectReason, RowLocal, Step
from distill.curate.signals import auroc, is_wrong
from distill.curate.text import last_user_message
from distill.schemas import SamplingParams
from distill.teachers.backend import RequestFailure

log = logging.getLogger(__name__)

DEFAULT_RUBRIC = """You are grading an answer written by an AI assistant.

Question:
{prompt}

Answer:
{response}

Rate the answer's correctness and faithfulness to the question on a scale of 1 to 5 \
(1 = wrong or off-topic, 3 = partly correct, 5 = fully correct and faithful). \
Reply with one line in the form "Score: N"."""

EXCERPT_CHARS = 200
_NUMBER = r"(\d+(?:\.\d+)?)"
# Most specific first; within a pattern the last match wins (a final verdict after reasoning).
_SCORE_PATTERNS = (
    re.compile(rf"\b(?:score|rating|grade)\b\W{{0,3}}(?:is|of)?\s*[:=\-]?\s*\**\s*{_NUMBER}", re.I),
    re.compile(rf"{_NUMBER}\s*(?:/|out\s+of)\s*\d+", re.I),
    re.compile(rf"^\W*{_NUMBER}\W*$"),
)


def parse_score(reply: str, max_score: int = 5) -> float | None:
    """The score a judge's reply gives, or None when it gives none in 1..max_score."""
    for pattern in _SCORE_PATTERNS:
        matches = pattern.findall(reply or "")
        if matches:
            value = float(matches[-1])
            return value if 1 <= value <= max_score else None
    return None


def judge_prompt(rubric: str, prompt: str, response: str, max_chars: int) -> str:
    """The rubric with the row filled in; `replace`, so braces in the texts are harmless."""
    return rubric.replace("{prompt}", prompt[:max_chars]).replace(
        "{response}", response[:max_chars]
    )


class LlmJudge(RowLocal, Step):
    name: Literal["llm_judge"] = "llm_judge"
    columns: ClassVar[tuple[str, ...]] = ("messages", "response_text", "reference")
    expensive: ClassVar[bool] = True

    teacher: str = Field("hf:embedded", description="the judge: any teacher spec")
    rubric: str = Field(
        DEFAULT_RUBRIC,
        description="judge prompt; {prompt} and {response} are replaced by the row's texts",
    )
    min_score: float = Field(3.0, ge=0, description="drop rows the judge scores below this")
    max_score: int = Field(5, ge=1, description="scores above this are unparsed")
    keep_unparsed: bool = Field(False, description="keep (but count) rows with no score")
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(48, ge=1, description="the judge's reply length cap")
    max_chars: int = Field(4000, ge=1, description="prompt / response truncated to this")
    seed: int = Field(0, description="row i is judged with seed + i (greedy either way)")
    letters: str = Field("ABCD", min_length=2, description="choice letters, for the AUROC")

    _backend: Any = PrivateAttr(None)
    _scores: list[float | None] = PrivateAttr(default_factory=list)
    _judge_id: str = PrivateAttr("")
    _session: Any = PrivateAttr(None)  # the judge loaded for one streamed run

    @field_validator("rubric")
    @classmethod
    def _rubric_has_response(cls, value: str) -> str:
        if "{response}" not in value:
            raise ValueError("the rubric must contain '{response}'")
        return value

    @model_validator(mode="after")
    def _min_score_reachable(self) -> LlmJudge:
        if self.min_score > self.max_score:
            raise ValueError(f"min_score {self.min_score} is above max_score {self.max_score}")
        return self

    def using(self, backend: Any) -> LlmJudge:
        """This step with an already-loaded judge backend (tests, or a judge shared across runs)."""
        step = self.model_copy()
        step._backend = backend
        return step

    def _sampling(self) -> SamplingParams:
        return SamplingParams(temperature=0.0, max_new_tokens=self.max_new_tokens, seed=self.seed)

    def _load(self) -> Any:
        if self._backend is not None:
            return self._backend
        from distill.teachers.specs import load_teacher

        return load_teacher(self.teacher, top_k=1)

    def replies(
        self, backend: Any, prompts: list[str], responses: list[str], offset: int = 0
    ) -> list[str | RequestFailure]:
        """The judge's reply to each row (or why it has none), in batches of `batch_size`;
        `offset`: rows judged before these (row i is judged with seed + offset + i)."""
        sampling = self._sampling()
        out: list[str | RequestFailure] = []
        for start in range(0, len(prompts), self.batch_size):
            end = min(start + self.batch_size, len(prompts))
            messages = [
                [{"role": "user", "content": judge_prompt(self.rubric, p, r, self.max_chars)}]
                for p, r in zip(prompts[start:end], responses[start:end], strict=True)
            ]
            ids = [backend.encode_chat(m) for m in messages]
            seeds = [self.seed + offset + row for row in range(start, end)]
            gens = backend.generate(ids, sampling, 1, seeds, messages=messages)
            out.extend(
                g.failure
                if g.failure is not None
                else g.text
                if g.text is not None
                else backend.decode(g.token_ids)
                for g in gens
            )
            log.info("llm_judge: %d/%d rows judged", end, len(prompts))
        return out

    def decide(self, table: pa.Table) -> Decisions:
        if not table.num_rows:
            self._scores = []
            return []
        return self.judge(table, self._load(), 0)  # loaded once per run of the step

    def decide_batch(self, batch: pa.Table, offset: int) -> Decisions:
        if self._session is None:
            self._session = self._load()  # once per streamed run, held until `release`
        return self.judge(batch, self._session, offset)

    def release(self) -> None:
        self._session = None

    def extra_keys(self, batch: pa.Table, decisions: Decisions) -> dict[str, pa.Array]:
        """The score (NaN: none) and whether the row is wrong, for the summary."""
        scores = [np.nan if s is None else s for s in self._scores] if decisions else []
        wrong = is_wrong(
            batch.column("response_text").to_pylist(),
            batch.column("reference").to_pylist(),
            self.letters,
        )
        # The judge's id rides along: a Ray worker judged the rows, the driver summarises.
        judge = pa.array([self._judge_id] * len(decisions), pa.string()).dictionary_encode()
        return {
            "score": pa.array(scores, pa.float64()),
            "wrong": pa.array(wrong, pa.float64()),
            "judge": judge,
        }

    def judge(self, table: pa.Table, backend: Any, offset: int) -> Decisions:
        """Decisions for the rows of `table`, judged by `backend`; sets `_scores`."""
        rows = table.select(["messages", "response_text"]).to_pylist()
        self._scores = []
        self._judge_id = backend.info(1, self._sampling()).teacher_id
        prompts = [last_user_message(row["messages"]) for row in rows]
        responses = [row["response_text"] or "" for row in rows]
        replies = self.replies(backend, prompts, responses, offset)
        decisions: Decisions = []
        for reply in replies:
            if isinstance(reply, RequestFailure):
                self._scores.append(None)
                details = {"judge": self._judge_id, "kind": reply.kind, "reason": reply.reason}
                failed = Drop(RejectReason.JUDGE_FAILED, details)
                decisions.append(None if self.keep_unparsed else failed)
                continue
            score = parse_score(reply, self.max_score)
            self._scores.append(score)
            if score is None:
                details = {"judge": self._judge_id, "reply": reply}
                unparsed = Drop(RejectReason.JUDGE_UNPARSED, details)
                decisions.append(None if self.keep_unparsed else unparsed)
            elif score < self.min_score:
                details = {
                    "score": score,
                    "min_score": self.min_score,
                    "judge": self._judge_id,
                    "reply": reply[:EXCERPT_CHARS],
                }
                decisions.append(Drop(RejectReason.JUDGE_LOW_SCORE, details))
            else:
                decisions.append(None)
        return decisions

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        if not table.num_rows or len(self._scores) != table.num_rows:
            return {}
        wrong = is_wrong(
            table.column("response_text").to_pylist(),
            table.column("reference").to_pylist(),
            self.letters,
        )
        return self.summary(self._scores, wrong)

    def summarize_keys(self, keys: pa.Table, decisions: Decisions) -> dict[str, Any]:
        if not keys.num_rows:
            return {}
        scores = [None if np.isnan(s) else s for s in keys.column("score").to_pylist()]
        self._judge_id = keys.column("judge")[0].as_py()
        return self.summary(scores, keys.column("wrong").to_numpy())

    def summary(self, all_scores: list[float | None], wrong: np.ndarray) -> dict[str, Any]:
        """The judge, the score histogram and mean, and the AUROC of a low score for a
        wrong answer."""
        scored = [s for s in all_scores if s is not None]
        counts = Counter(f"{s:g}" for s in scored)
        summary: dict[str, Any] = {
            "judge": self._judge_id,
            "scored": len(scored),
            "unparsed": len(all_scores) - len(scored),
            "mean_score": round(float(np.mean(scored)), 4) if scored else None,
            "score_counts": dict(sorted(counts.items())),
        }
        scores = np.array([np.nan if s is None else s for s in all_scores])
        usable = ~np.isnan(scores) & ~np.isnan(wrong)
        if usable.any():
            labels = wrong[usable].astype(bool)
            value = auroc(-scores[usable], labels)  # a low score should predict wrong
            summary["stats"] = {
                "judge_auroc": {
                    "auroc": None if np.isnan(value) else round(value, 4),
                    "n": int(usable.sum()),
                    "wrong": int(labels.sum()),
                }
            }
        return summary
