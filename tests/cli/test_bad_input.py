"""Bad input gets one line and exit code 2, never a traceback, and before any model loads:
every loader is replaced by one that fails the test if it is reached."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.cli.quiet import QUIET_ENV
from distill.teachers.specs import load_hf_teacher as REAL_LOAD_HF
from tests.factories import make_record, write_fake_dataset

runner = CliRunner()
HUB_ID = "HuggingFaceTB/SmolLM2-135M"
DOWNLOAD = f"download the checkpoint first (huggingface-cli download {HUB_ID} --local-dir DIR"


def _never(*args: object, **kwargs: object) -> None:
    raise AssertionError("a model was loaded before the options were checked")


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for target in (
        "distill.gen.runner.load_teacher",
        "distill.gen.score.load_teacher",
        "distill.teachers.specs.load_hf_teacher",
        "distill.train.train_student",
        "distill.eval.mcq.evaluate_mcq",
    ):
        monkeypatch.setattr(target, _never)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, str]:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Say hi.", "response": "hi"}) + "\n")
    questions = tmp_path / "mmlu.jsonl"
    questions.write_text(prompts.read_text())
    write_fake_dataset(tmp_path / "data", [make_record(row=0)])
    return {
        "P": str(prompts),
        "D": str(tmp_path / "data"),
        "Q": str(questions),
        "O": str(tmp_path / "out"),
        "NO": str(tmp_path / "missing"),
    }


CASES = [
    ("gen P --out O --top-k 0", "--top-k 0: must be at least 1"),
    ("gen P --out O --top-k -3", "--top-k -3: must be at least 1"),
    (
        "gen P --out O --max-new-tokens 0",
        "--max-new-tokens: Input should be greater than or equal to 1",
    ),
    ("gen P --out O --temperature -1", "--temperature: Input should be greater than or equal to 0"),
    ("gen P --out O --top-p 1.5", "--top-p: Input should be less than or equal to 1"),
    ("gen P --out O --n 0", "--n: Input should be greater than or equal to 1"),
    ("gen P --out O --batch-size 0", "--batch-size 0: must be at least 1"),
    ("gen P --out O --shard-size 0", "--shard-size 0: must be at least 1"),
    ("gen P --out O --limit 0", "--limit 0: must be at least 1"),
    ("gen P --out O --format xml", "--format 'xml': use one of"),
    ("gen P --out O --codec zip", "--codec 'zip': use one of"),
    ("gen NO --out O", "prompt file not found"),
    ("gen P --out O --teacher nope:x", "unknown backend 'nope'"),
    ("gen P --out O --teacher hf:NO", "is not a checkpoint directory"),
    (f"gen P --out O --teacher hf:{HUB_ID}", DOWNLOAD),
    ("gen P --out O --teacher-opt device=gpu", "--teacher-opt device: Value error, device='gpu'"),
    ("gen P --out O --teacher-opt devic=cpu", "--teacher-opt devic: Extra inputs are not"),
    ("gen P --out O --teacher-opt nokeyvalue", "--teacher-opt 'nokeyvalue': expected KEY=VALUE"),
    ("score P --out O --top-k 0", "--top-k 0: must be at least 1"),
    ("score NO --out O", "not found"),
    ("score P --out O --teacher hf:NO", "is not a checkpoint directory"),
    ("train D --out O --mode sft --max-steps 0", "--max-steps 0: must be at least 1"),
    ("train D --out O --mode sft --batch-size 0", "--batch-size 0: must be at least 1"),
    ("train D --out O --mode sft --learning-rate 0", "--learning-rate 0.0: must be above 0"),
    ("train D --out O --mode kd --temperature 0", "--temperature: Input should be greater than 0"),
    ("train D --out O --mode sft --dtype float8", "--dtype: Input should be 'float32'"),
    ("train D --out O --mode nope", "--mode 'nope': use sft, kd or gkd"),
    ("train NO --out O --mode sft", "no manifest.json; is this a distill dataset?"),
    ("train D --out O --mode sft --student NO", "is not a checkpoint directory"),
    ("train D --out O --mode sft --student vllm:NO", "can only generate or score"),
    (f"train D --out O --mode sft --student {HUB_ID}", DOWNLOAD),
    (f"train D --out O --mode sft --student hf:{HUB_ID}", DOWNLOAD),
    ("train D --out O --mode gkd --teacher openai:gpt@http://x", "can only generate or score"),
    ("eval NO --questions Q", "MODEL 'NO'"),
    ("eval hf:embedded --questions NO", "--questions"),
    ("eval hf:embedded --questions Q --max-new-tokens 0", "--max-new-tokens 0: must be at least 1"),
    ("curate NO --out O", "no manifest.json"),
    ("curate D --out O --recipe NO", "NO"),
]


def _run(command: str, inputs: dict[str, str]):
    args = [inputs.get(word, word) for word in command.split()]
    return runner.invoke(app, args, env={"COLUMNS": "80"})


def assert_one_line_error(result, expected: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], result.output


@pytest.mark.parametrize(("command", "expected"), CASES, ids=[c for c, _ in CASES])
def test_bad_input_gets_one_line_and_exit_code_2(
    command: str, expected: str, inputs: dict[str, str]
) -> None:
    result = _run(command, inputs)
    expected = expected.replace("NO", inputs["NO"]) if "NO" in command.split() else expected
    assert_one_line_error(result, expected)


@pytest.mark.parametrize(
    ("command", "module", "extra"),
    [
        ("gen P --out O --teacher openai:gpt-4o-mini@https://api.openai.com/v1", "openai", "api"),
        ("train D --out O --mode sft --lora-r 4", "peft", "lora"),
    ],
)
def test_a_missing_optional_dependency_names_its_extra(
    command: str, module: str, extra: str, inputs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a)
    )
    result = _run(command, inputs)
    assert_one_line_error(result, f"needs the {module} package: pip install 'distill[{extra}]'")


def test_an_offline_hub_id_is_one_line_in_a_real_process(inputs: dict[str, str]) -> None:
    """As a user runs it: a fresh process, HF_HUB_OFFLINE=1, the Hub id not cached."""
    args = ["train", inputs["D"], "--out", inputs["O"], "--mode", "sft", "--student", HUB_ID]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "distill.cli", *args], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert DOWNLOAD in proc.stderr


def _warned_from(module: str) -> None:
    warnings.warn_explicit("chatter", FutureWarning, f"{module}.py", 1, module=module)


@pytest.mark.parametrize("verbose", [False, True])
def test_upstream_chatter_is_hidden_unless_verbose(
    verbose: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = ["-v"] if verbose else []
        result = runner.invoke(app, [*flags, "curate", "--print-default-recipe"])
        assert result.exit_code == 0, result.output
        _warned_from("transformers.modeling_utils")
        _warned_from("distill.curate.dedup.near")
    shown = sorted(w.filename for w in caught)
    if verbose:
        assert shown == ["distill.curate.dedup.near.py", "transformers.modeling_utils.py"]
        assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    else:
        assert shown == ["distill.curate.dedup.near.py"]  # distill's own warnings still show
        assert {name: os.environ[name] for name in QUIET_ENV} == QUIET_ENV


@pytest.mark.slow
def test_gen_prints_no_loading_bars(
    tmp_path: Path, inputs: dict[str, str], embedded_teacher
) -> None:
    from distill.teachers import specs

    # this one loads a teacher: the autouse fixture's loaders put back
    args = ["gen", inputs["P"], "--out", str(tmp_path / "g"), "--max-new-tokens", "2"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("distill.gen.runner.load_teacher", specs.load_teacher)
        patch.setattr("distill.teachers.specs.load_hf_teacher", REAL_LOAD_HF)
        result = runner.invoke(app, [*args, "--top-k", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 1 records" in result.output
    assert "Loading weights" not in result.output and "%|" not in result.output
