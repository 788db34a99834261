"""`distill eval`: per-domain MCQ accuracy and permutation agreement, library and CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from distill.cli import app
from distill.eval.mcq import evaluate_mcq, score_model

QUESTIONS = [
    ("What is 2 + 2?", ["3", "4", "5", "6"], "B", "math"),
    ("What is 3 * 3?", ["9", "6", "12", "8"], "A", "math"),
    ("Capital of France?", ["Rome", "Berlin", "Madrid", "Paris"], "D", "geography"),
    ("Largest ocean?", ["Atlantic", "Pacific", "Indian", "Arctic"], "B", "geography"),
]


def mcq_file(tmp_path):
    path = tmp_path / "mcq.jsonl"
    rows = [
        {
            "question": q,
            **{f"answer_{letter.lower()}": o for letter, o in zip("abcd", opts, strict=True)},
            "correct_answer": ref,
            "topic": topic,
        }
        for q, opts, ref, topic in QUESTIONS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_score_model_counts():
    orders = [[1, 0, 2, 3], [3, 2, 1, 0], [0, 2, 1, 3]]
    # q1: right, and permuted "A" is old option 1 = "B" -> consistent
    # q2: wrong (C vs A); permuted "B" is old 2 = "C" -> consistent although wrong
    # q3: no letter -> wrong and not consistent
    score = score_model(
        "m", ["x", "x", "y"], ["B", "A", "C"], ["B", "C", None], ["A", "B", "C"], orders
    )
    assert (score.correct, score.total, score.consistent, score.extracted) == (1, 3, 2, 2)
    assert score.per_domain == {
        "x": {"accuracy": 0.5, "correct": 1, "total": 2},
        "y": {"accuracy": 0.0, "correct": 0, "total": 1},
    }
    assert abs(score.agreement - 2 / 3) < 1e-12


def test_evaluate_two_models_and_cli(tiny_student, tmp_path):
    questions = mcq_file(tmp_path)
    out = tmp_path / "eval.json"
    result = evaluate_mcq([tiny_student, tiny_student], questions, out, max_new_tokens=4)
    saved = json.loads(out.read_text())
    assert saved["count"] == 4 and len(saved["models"]) == 2
    references = [ref for *_, ref, _ in QUESTIONS]
    for score in result.models:
        assert set(score.per_domain) == {"math", "geography"}
        assert len(score.answers) == len(score.permuted_answers) == 4
        # independent count from the letters the model chose
        expected = sum(a == r for a, r in zip(score.answers, references, strict=True))
        assert score.correct == expected and score.accuracy == expected / 4
        assert sum(d["total"] for d in score.per_domain.values()) == 4
        assert 0.0 <= score.agreement <= 1.0
    # greedy decoding: the same model twice gives the same answers
    assert result.models[0].answers == result.models[1].answers

    cli_out = tmp_path / "cli.json"
    run = CliRunner().invoke(
        app,
        ["eval", str(tiny_student), "--questions", str(questions), "--out", str(cli_out),
         "--max-new-tokens", "2", "--limit", "2"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "permutation agreement" in run.output
    assert json.loads(cli_out.read_text())["count"] == 2
