"""How often a process that ran the vLLM teacher exits cleanly: `distill score` (which ends
with `os._exit` after a vLLM run) against the same scoring from a plain script (which
leaves the process to interpreter finalisation), same engine options, same rows.

Runs from the main environment (it starts .venv-vllm subprocesses), from the repo root:
    python -m bench.vllm_exit [--runs 8]

Each run is a fresh process that scores 4 (prompt, response) pairs with the embedded
SmolLM2 through `vllm:` (float32, enforce_eager, max_model_len 1024). Counted per case:
exit code 0, an abort (exit -6 / 134, "terminate called without an active exception"),
and whether vLLM logged an orderly engine shutdown ("[shutdown] MPClient: complete"
without "engine core exited unexpectedly"). The two cases alternate, so a busy moment of
the machine falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from distill.teachers.embedded import embedded_teacher_dir

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
PAIRS = [
    ("What is 2+2?", "4"),
    ("Name a color.", "Blue is a color."),
    ("Say hi", "Hi there!"),
    ("Capital of France?", "Paris."),
]
OPTIONS = ["dtype=float32", "max_model_len=1024", "enforce_eager=true"]
# The library path, as a user's script would call it (no os._exit at the end).
SCRIPT = """
import sys
from distill.gen.score import score_dataset
if __name__ == "__main__":
    options = dict(o.split("=", 1) for o in sys.argv[4:])
    score_dataset(sys.argv[1], sys.argv[2], teacher=sys.argv[3], teacher_options=options,
                  top_k=5, progress=False)
"""


def run_once(case: str, source: Path, out: Path, teacher: str) -> dict:
    if case == "cli":
        cmd = [str(VLLM_PYTHON), "-m", "distill.cli", "score", str(source), "--out", str(out)]
        cmd += ["--teacher", teacher, "--top-k", "5"]
        for option in OPTIONS:
            cmd += ["--teacher-opt", option]
    else:
        cmd = [str(VLLM_PYTHON), "-c", SCRIPT, str(source), str(out), teacher, *OPTIONS]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
    }
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    orderly = "[shutdown] MPClient: complete" in log and "exited unexpectedly" not in log
    written = (out / "manifest.json").is_file()
    return {
        "rc": proc.returncode,
        "orderly": orderly,
        "written": written,
        "s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8, help="runs per case")
    args = parser.parse_args()
    if not VLLM_PYTHON.is_file():
        raise SystemExit("no .venv-vllm: bash scripts/setup_vllm.sh")
    teacher = f"vllm:{embedded_teacher_dir()}"
    results: dict[str, list[dict]] = {"cli": [], "script": []}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pairs.jsonl"
        source.write_text(
            "".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in PAIRS)
        )
        for i in range(args.runs):
            for case in results:
                out = Path(tmp) / f"{case}-{i}"
                results[case].append(run_once(case, source, out, teacher))
                print(case, i, results[case][-1], flush=True)
    print(f"\n{'case':8s} {'runs':>5s} {'exit 0':>7s} {'aborts':>7s} {'orderly':>8s} "
          f"{'data written':>13s} {'median s':>9s}")  # fmt: skip
    for case, runs in results.items():
        codes = Counter(r["rc"] for r in runs)
        aborts = codes[-6] + codes[134]
        median = sorted(r["s"] for r in runs)[len(runs) // 2]
        print(
            f"{case:8s} {len(runs):5d} {codes[0]:7d} {aborts:7d} "
            f"{sum(r['orderly'] for r in runs):8d} {sum(r['written'] for r in runs):13d} "
            f"{median:9.1f}"
        )


if __name__ == "__main__":
    main()
