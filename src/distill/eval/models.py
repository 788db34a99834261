"""Which models `distill eval` compares, from their specs, each with a label and a role.

A spec is one of
- `hf:embedded`: the embedded teacher (SmolLM2-135M-Instruct), found in the package;
- `hf:PATH` (or a bare PATH holding `config.json`): a Hugging Face checkpoint;
- a `distill train` run directory (it holds `lineage.json`): its student (`RUN/model`) and
  the student's initial weights, the baseline, read from the run's recorded config
  (`lineage.json`'s `config.student`: the `--student` it was given, or the random student
  it built in `RUN/student_init`).
Any spec may start with `LABEL=` to name the model in the output (`teacher=hf:/m/llama`).

Roles order the comparison: teachers (the upper bound), baselines (untrained), students.
An `hf:` model is a teacher when it is labelled so or when a run given beside it names
it among its dataset's teachers; otherwise it is just a `model`. Runs that share a base
share one baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from distill.run_lineage import LINEAGE_NAME, RunLineage, read_run_lineage

Role = Literal["teacher", "baseline", "student", "model"]
ROLE_ORDER: tuple[Role, ...] = ("teacher", "baseline", "student", "model")
EMBEDDED_SPEC = "hf:embedded"
_LABEL = re.compile(r"^([\w .()+-]+)=(.+)$")  # no ':' or '/' in a label: paths keep their '='


@dataclass(frozen=True)
class EvalModel:
    """One model of the comparison: where its weights are and what it is."""

    label: str
    role: Role
    spec: str
    path: Path  # a Hugging Face checkpoint dir
    runs: tuple[Path, ...] = ()  # the train runs it is the student or the baseline of
    lineage: RunLineage | None = field(default=None, compare=False)  # a student's run


def _hf_model(spec: str, label: str | None) -> EvalModel:
    target = spec.removeprefix("hf:")
    if target in ("embedded", ""):
        from distill.teachers.embedded import EMBEDDED_MODEL_ID, embedded_teacher_dir

        return EvalModel(label or EMBEDDED_MODEL_ID, "model", EMBEDDED_SPEC, embedded_teacher_dir())
    path = Path(target).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{spec}: not a Hugging Face checkpoint dir (no config.json)")
    return EvalModel(label or path.name, "model", spec, path)


def _run_models(run_dir: Path, label: str | None) -> tuple[EvalModel, EvalModel]:
    """(the run's student, its baseline) from `RUN/lineage.json`."""
    run = read_run_lineage(run_dir)
    if run is None:
        raise FileNotFoundError(f"{run_dir}: no {LINEAGE_NAME} (not a distill train run dir)")
    model_dir = run_dir / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: no trained student in {model_dir}")
    base = run.config.get("student")
    if not base or not (Path(base) / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir / LINEAGE_NAME}: config.student {base!r}, the run's initial weights "
            "(the baseline), is not a checkpoint dir any more"
        )
    name = f"{run.mode} student" if run_dir.name == run.mode else f"{run_dir.name} ({run.mode})"
    student = EvalModel(label or name, "student", str(run_dir), model_dir, (run_dir,), run)
    baseline = EvalModel("baseline", "baseline", f"hf:{base}", Path(base), (run_dir,))
    return student, baseline


def _split_label(spec: str) -> tuple[str | None, str]:
    found = _LABEL.match(spec)
    return (found.group(1).strip(), found.group(2)) if found else (None, spec)


def _is_teacher(model: EvalModel, labelled: bool, runs: list[RunLineage]) -> bool:
    """Labelled "teacher...", or named among the runs' teachers ("hf:NAME[+dtype]@rev")."""
    if labelled and model.label.lower().startswith("teacher"):
        return True
    from distill.teachers.embedded import EMBEDDED_MODEL_ID

    name = EMBEDDED_MODEL_ID if model.spec == EMBEDDED_SPEC else model.path.name
    names = {
        t.split(":", 1)[-1].split("@", 1)[0].split("+", 1)[0] for r in runs for t in r.teachers
    }
    return name in names


def _merged_baselines(baselines: list[EvalModel]) -> list[EvalModel]:
    """One baseline per initial checkpoint; labelled by it when the runs started apart."""
    by_path: dict[Path, EvalModel] = {}
    for model in baselines:
        key = model.path.resolve()
        held = by_path.get(key)
        runs = (held.runs if held else ()) + model.runs
        by_path[key] = EvalModel(model.label, "baseline", model.spec, model.path, runs)
    merged = list(by_path.values())
    if len(merged) == 1:
        return merged
    return [
        EvalModel(f"baseline of {', '.join(r.name for r in m.runs)}", "baseline", m.spec,
                  m.path, m.runs)
        for m in merged
    ]  # fmt: skip


def resolve_models(specs: list[str]) -> list[EvalModel]:
    """The models the specs name, teachers first, then baselines, then students."""
    if not specs:
        raise ValueError("no models given: name at least one spec (hf:embedded, hf:PATH, RUN)")
    plain: list[tuple[EvalModel, bool]] = []
    students, baselines = [], []
    for given in specs:
        label, spec = _split_label(given)
        path = Path(spec).expanduser()
        if not spec.startswith("hf:") and (path / LINEAGE_NAME).is_file():
            student, baseline = _run_models(path, label)
            students.append(student)
            baselines.append(baseline)
        elif spec.startswith("hf:") or (path / "config.json").is_file():
            plain.append((_hf_model(spec, label), label is not None))
        else:
            raise FileNotFoundError(
                f"{spec}: not a model spec (hf:embedded, hf:PATH) nor a train run dir "
                f"(no {LINEAGE_NAME})"
            )
    runs = [s.lineage for s in students if s.lineage is not None]
    others = [
        EvalModel(m.label, "teacher" if _is_teacher(m, labelled, runs) else "model", m.spec, m.path)
        for m, labelled in plain
    ]
    models = [*others, *_merged_baselines(baselines), *students]
    models.sort(key=lambda m: ROLE_ORDER.index(m.role))  # stable: given order within a role
    labels = [m.label for m in models]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"two models are labelled {repeated[0]!r}: name them with LABEL=SPEC")
    return models
