"""What the commands share: `--teacher-opt` parsing and the hard exit after a vLLM run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distill.cli.app import teacher_options

# A one-command Typer app in a child process: the command writes "done", and an atexit
# hook writes "finalised" when the interpreter shuts down the normal way.
CHILD = textwrap.dedent(
    """
    import atexit, sys
    from pathlib import Path
    from typing import Annotated
    import typer
    from distill.cli.app import exit_hard_after_vllm, fail

    marks = Path(sys.argv[1])
    atexit.register(lambda: marks.open("a").write("finalised\\n"))
    app = typer.Typer()

    @app.command()
    @exit_hard_after_vllm
    def run(
        teacher: Annotated[list[str], typer.Option()],
        broken: Annotated[bool, typer.Option()] = False,
    ) -> None:
        marks.open("a").write("done\\n")
        if broken:
            fail("broken")

    app(sys.argv[2:])
    """
)


def run_child(tmp_path: Path, *args: str) -> tuple[int, list[str]]:
    marks = tmp_path / "marks.txt"
    marks.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(marks), *args], capture_output=True, text=True
    )
    return proc.returncode, marks.read_text().split()


def test_a_vllm_run_ends_without_interpreter_finalisation_and_keeps_its_exit_code(
    tmp_path: Path,
) -> None:
    assert run_child(tmp_path, "--teacher", "hf:embedded", "--teacher", "vllm:/m") == (
        0,
        ["done"],
    )
    assert run_child(tmp_path, "--teacher", "vllm:/m", "--broken") == (2, ["done"])


def test_other_teachers_exit_the_normal_way(tmp_path: Path) -> None:
    assert run_child(tmp_path, "--teacher", "hf:embedded") == (0, ["done", "finalised"])
    assert run_child(tmp_path, "--teacher", "openai:m@http://x", "--broken") == (
        2,
        ["done", "finalised"],
    )


def test_teacher_options_parse_key_value_pairs() -> None:
    assert teacher_options(["dtype=float32", " seed=3", "stop=a=b"]) == {
        "dtype": "float32",
        "seed": "3",
        "stop": "a=b",
    }
    assert teacher_options(None) == {}
    with pytest.raises(ValueError, match="'dtype': expected KEY=VALUE"):
        teacher_options(["dtype"])
