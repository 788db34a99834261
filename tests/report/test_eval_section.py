"""The report's eval section: the chart's bars are the accuracies, and the text says when
the teacher is at chance."""

from __future__ import annotations

import json

import pytest

from distill.eval.mcq import evaluate_mcq
from distill.eval.models import EvalModel
from distill.report import collect_report, write_report
from distill.report.eval_section import category_chart
from tests.eval.fakes import always_a, fake_loader, knows, mcq_file, mute_on


def comparison(tmp_path, teacher):
    behaviours = {"teacher": teacher, "baseline": always_a, "kd student": mute_on(("ocean",))}
    roles = {"teacher": "teacher", "baseline": "baseline", "kd student": "student"}
    models = []
    for label, role in roles.items():
        (tmp_path / label).mkdir()
        models.append(EvalModel(label, role, f"hf:{tmp_path / label}", tmp_path / label))
    out = tmp_path / "demo" / "eval" / "eval.json"
    return evaluate_mcq(models, mcq_file(tmp_path), out=out, load=fake_loader(behaviours))


def test_the_bars_are_the_accuracies_per_category_and_overall(tmp_path):
    result = comparison(tmp_path, knows)
    axes = category_chart(result).axes[0]
    groups = [*result.categories, "all"]
    bars = [patch.get_height() for patch in axes.patches]
    expected = [
        (m.per_category[g] if g != "all" else m.overall).accuracy.value
        for m in result.models
        for g in groups
    ]
    assert bars == pytest.approx(expected)
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [
        "teacher (teacher)", "baseline (untrained)", "kd student (student)",
    ]  # fmt: skip
    chance = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in chance] == [0.25]


def test_the_report_shows_the_chart_and_says_the_teacher_is_at_chance(tmp_path):
    result = comparison(tmp_path, always_a)  # right on 2 of 8: 25 %, chance
    assert result.models[0].overall.accuracy.value == 0.25
    report = collect_report([tmp_path / "demo"])
    assert report["eval"] == [json.loads((tmp_path / "demo/eval/eval.json").read_text())]
    html_path, _ = write_report(report, tmp_path / "report.html")
    page = html_path.read_text()
    section = page.split("<h2>evaluation: teacher, baseline and students</h2>")[1]
    assert "<svg" in section and "chance 25%" in section and "<script" not in page
    assert "The teacher, teacher, is at chance on these questions" in section
    assert "no accuracy gain from distillation can show" in section
    assert "docs/eval.md" in section


def test_a_teacher_above_chance_is_said_to_be(tmp_path):
    comparison(tmp_path, knows)
    page = write_report(collect_report([tmp_path / "demo"]), tmp_path / "r.html")[0].read_text()
    assert "is above chance (accuracy 1.000" in page and "is at chance" not in page
