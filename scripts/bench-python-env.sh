#!/usr/bin/env bash
# A Python virtual environment for the embedding benchmark's Python comparators
# (scripts/bench-embed-python.py): sentence-transformers on PyTorch (CPU), and the same model
# exported to ONNX and run with onnxruntime (CPU). Kept in a cache directory outside the repo;
# it is large (the default Linux torch wheel pulls in the nvidia-* CUDA wheels, ~3-4 GB in all).
# Idempotent; prints the environment's python as its last line.
# usage: scripts/bench-python-env.sh [DIR]   (DIR defaults to ${CAIRN_BENCH_VENV:-$HOME/.cache/cairn/bench-venv})
#
# The pins are a set that resolves together: sentence-transformers' ONNX backend needs
# optimum-onnx, whose 0.1.0 wants optimum~=2.1.0 and transformers<4.58, so sentence-transformers
# stays on 5.2.x (6.x needs transformers>=5); optimum-onnx 0.1.0 exports with dynamo=False on
# torch>=2.9.
set -euo pipefail
VENV="${1:-${CAIRN_BENCH_VENV:-$HOME/.cache/cairn/bench-venv}}"
REQUIREMENTS=(
  torch==2.9.1
  sentence-transformers==5.2.3
  transformers==4.57.6
  optimum==2.1.0
  "optimum-onnx[onnxruntime]==0.1.0"
  onnx==1.19.1
  onnxruntime==1.23.2
)
stamp="$VENV/.cairn-requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  python3 -m venv "$VENV" || { echo "bench-python-env: cannot create a virtual environment at $VENV (is python3-venv installed?)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { echo "bench-python-env: pip install ${REQUIREMENTS[*]} failed" >&2; exit 1; }
  # The default torch wheel is CUDA-enabled; it must still import on a machine without a GPU.
  "$VENV/bin/python" -c 'import torch, sentence_transformers, onnxruntime, optimum.onnxruntime' \
    || { echo "bench-python-env: the installed packages do not import" >&2; exit 1; }
  echo "${REQUIREMENTS[*]}" > "$stamp"
  echo "bench-python-env: installed ${REQUIREMENTS[*]} into $VENV"
fi
echo "$VENV/bin/python"
