#!/usr/bin/env bash
# The README's test command: .venv with the package and its test, local-model and browser
# extras, Debian's Chromium for the browser tests when it can be installed, then the whole
# suite (unit, kernel, local model, notebooks under nbval, JupyterLab in a browser).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/venv.sh
make_venv "test,local,e2e"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser tests…"
        { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
            || echo "could not install chromium: the browser tests will be skipped"
    else
        echo "no chromium, and no root to install it: the browser tests will be skipped"
    fi
fi
exec .venv/bin/python -m pytest "$@"
