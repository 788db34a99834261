from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from distill.curate import curate_dataset
from distill.curate.base import Drop, RejectReason
from distill.curate.llm_judge import LlmJudge, parse_score
from distill.curate.recipe import Recipe, recipe_from_dict
from distill.schemas import SamplingParams, TeacherInfo
from distill.schemas.arrow import records_to_table
from distill.store import read_table
from distill.teachers.backend import Generation, RequestFailure
from tests.factories import fake_teacher, make_record, write_fake_dataset


class QueuedJudge:
    """A deterministic judge: replies are queued and handed out in order (simonw/llm style)."""

    def __init__(self, replies: list[str | RequestFailure]) -> None:
        self.replies = list(replies)
        self.calls: list[dict] = []

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        return fake_teacher(top_k=top_k).model_copy(update={"sampling": sampling})

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        return [len(messages[-1]["content"])]

    def generate(self, prompts, sampling, top_k, seeds, messages=None) -> list[Generation]:
        self.calls.append(
            {"n": len(prompts), "sampling": sampling, "seeds": seeds, "messages": messages}
        )
        out = []
        for _ in prompts:
            reply = self.replies.pop(0)
            if isinstance(reply, RequestFailure):  # an API request that failed for good
                out.append(Generation.failed(reply, attempts=3))
            else:
                out.append(Generation([], [], [], [], [], "stop", text=reply))
        return out

    def decode(self, token_ids: list[int]) -> str:
        raise AssertionError("replies come back as text")

    def tokenizer_info(self):
        return None


def _table(responses: list[str], references: list[str | None] | None = None):
    references = references or ["B"] * len(responses)
    records = [
        make_record(response=r, row=i, reference=ref, n_tokens=2)
        for i, (r, ref) in enumerate(zip(responses, references, strict=True))
    ]
    return records_to_table(records)


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 4", 4.0),
        ("score:5", 5.0),
        ("**Score:** 2", 2.0),
        ("The answer is right.\nScore: 3\nFinal score: 5", 5.0),  # the last verdict wins
        ("Rating = 1", 1.0),
        ("I'd give it 4/5.", 4.0),
        ("3 out of 5", 3.0),
        ("  4. ", 4.0),
        ("Score: 4.5", 4.5),
        ("Score: 10", None),  # outside 1..5: not silently read as a 1
        ("Score: 0", None),
        ("The answer looks fine.", None),
        ("", None),
    ],
)
def test_parse_score(reply: str, score: float | None) -> None:
    assert parse_score(reply) == score


def test_parse_score_honours_max_score() -> None:
    assert parse_score("Score: 8", max_score=10) == 8.0


def test_thresholds_reasons_and_details() -> None:
    judge = QueuedJudge(["Score: 5", "Score: 2", "no idea", "Score: 3"])
    step = LlmJudge(min_score=3, batch_size=3).using(judge)
    table = _table(["Answer: B", "Answer: A", "Answer: B", "Answer: C"])
    decisions = step.decide(table)

    assert decisions[0] is None and decisions[3] is None  # 3 is not below min_score 3
    low, unparsed = decisions[1], decisions[2]
    judge_id = fake_teacher().teacher_id
    assert low.reason is RejectReason.JUDGE_LOW_SCORE
    assert low.details == {"score": 2.0, "min_score": 3.0, "judge": judge_id, "reply": "Score: 2"}
    assert unparsed.reason is RejectReason.JUDGE_UNPARSED
    assert unparsed.details == {"judge": judge_id, "reply": "no idea"}
    json.dumps([d.details for d in decisions if d])  # what the runner stores

    # Batched, greedy, seeded per row, with the row's prompt and response in the rubric.
    assert [c["n"] for c in judge.calls] == [3, 1]
    assert [s for c in judge.calls for s in c["seeds"]] == [0, 1, 2, 3]
    sampling = judge.calls[0]["sampling"]
    assert sampling.temperature == 0.0 and sampling.max_new_tokens == step.max_new_tokens
    content = judge.calls[0]["messages"][1][0]["content"]
    assert "What is 2+2?" in content and "Answer: A" in content and "Score: N" in content

    summary = step.summarize(table, decisions)
    assert summary["judge"] == judge_id
    assert summary["scored"] == 3 and summary["unparsed"] == 1
    assert summary["score_counts"] == {"2": 1, "3": 1, "5": 1}
    assert summary["mean_score"] == pytest.approx(10 / 3, abs=1e-4)
    # Wrong answers (rows 1 and 3) scored 2 and 3, the right one 5: low score predicts wrong.
    assert summary["stats"]["judge_auroc"] == {"auroc": 1.0, "n": 3, "wrong": 2}


def test_a_failed_judge_request_is_its_own_reason_never_a_score() -> None:
    timeout = RequestFailure("timeout", "APITimeoutError: Request timed out.")
    step = LlmJudge(min_score=3).using(QueuedJudge(["Score: 5", timeout, "Score: 1"]))
    decisions = step.decide(_table(["Answer: B"] * 3))
    assert decisions[0] is None
    assert decisions[1] == Drop(
        RejectReason.JUDGE_FAILED,
        {"judge": fake_teacher(top_k=1).teacher_id, "kind": "timeout", "reason": timeout.reason},
    )
    assert decisions[2].reason == RejectReason.JUDGE_LOW_SCORE
    kept = LlmJudge(keep_unparsed=True).using(QueuedJudge([timeout])).decide(_table(["x"]))
    assert kept == [None]


def test_keep_unparsed_keeps_but_counts() -> None:
    step = LlmJudge(keep_unparsed=True).using(QueuedJudge(["???"]))
    table = _table(["Answer: B"])
    decisions = step.decide(table)
    assert decisions == [None]
    assert step.summarize(table, decisions)["unparsed"] == 1


def test_custom_rubric_and_no_references() -> None:
    judge = QueuedJudge(["Rating: 1"])
    rubric = "Q={prompt} {braces} A={response}. Say Rating: N"
    step = LlmJudge(rubric=rubric, min_score=2).using(judge)
    table = _table(["free text"], references=[None])
    decisions = step.decide(table)
    assert decisions[0].reason is RejectReason.JUDGE_LOW_SCORE
    content = judge.calls[0]["messages"][0][0]["content"]
    assert content.startswith("Q=What is 2+2?") and "{braces} A=free text." in content
    assert "stats" not in step.summarize(table, decisions)  # no MCQ references, no AUROC


def test_recipe_accepts_the_step_and_rejects_typos() -> None:
    recipe = recipe_from_dict({"steps": [{"name": "llm_judge", "min_score": 4}]})
    assert isinstance(recipe.steps[0], LlmJudge)
    assert recipe.steps[0].teacher == "hf:embedded"
    assert "rubric" in recipe.steps[0].params()
    with pytest.raises(ValueError, match="min_scor"):
        recipe_from_dict({"steps": [{"name": "llm_judge", "min_scor": 4}]})
    with pytest.raises(ValidationError, match="response"):
        LlmJudge(rubric="no placeholder")


def test_runner_records_score_and_auroc(tmp_path: Path, monkeypatch) -> None:
    records = [
        make_record(response=r, row=i, n_tokens=2)
        for i, r in enumerate(["Answer: B", "Answer: A", "Answer: C"])
    ]
    write_fake_dataset(tmp_path / "gen", records)
    judge = QueuedJudge(["Score: 5", "Score: 1", "Score: 2"])
    monkeypatch.setattr("distill.teachers.specs.load_teacher", lambda spec, top_k=20: judge)
    result = curate_dataset(
        tmp_path / "gen", tmp_path / "cur", Recipe(steps=[LlmJudge(min_score=3)])
    )
    assert result.counts["kept"] == 1
    assert result.kept_manifest.stats["judge_auroc"]["auroc"] == 1.0
    summary = result.steps[0].summary
    assert summary["score_counts"] == {"1": 1, "2": 1, "5": 1}
    rejected = read_table(result.rejected_dir).to_pylist()
    assert {r["reject_reason"] for r in rejected} == {"judge_low_score"}
    assert sorted(json.loads(r["reject_details"])["score"] for r in rejected) == [1.0, 2.0]


@pytest.mark.slow
def test_embedded_judge_scores_or_flags_every_row(embedded_teacher) -> None:
    step = LlmJudge(min_score=1, max_new_tokens=16, batch_size=2).using(embedded_teacher)
    table = _table(["Two plus two is four. Answer: B", "Answer: D"])
    decisions = step.decide(table)
    for decision, score in zip(decisions, step._scores, strict=True):
        if score is None:
            assert decision.reason is RejectReason.JUDGE_UNPARSED
            assert isinstance(decision.details["reply"], str)
        else:
            assert 1 <= score <= 5 and decision is None
    assert step.summarize(table, decisions)["judge"].startswith("hf:")
