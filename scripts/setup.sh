#!/usr/bin/env bash
# Set up lattts in ./.venv: a virtual environment, PyTorch where none is present, then lattts itself.
# Usage: bash scripts/setup.sh          # lattts and its runtime dependencies
#        bash scripts/setup.sh --dev    # plus the test dependencies
# PYTHON=python3.11 selects the interpreter. An existing torch in the venv (e.g. a CUDA build) is kept;
# otherwise torch 2.13.0 is installed first, which pip takes from a local CPU wheel where one exists.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv

pip_install() {  # pip install, quiet; prints pip's output (minus find-links noise) and fails if pip fails
    local log status=0
    log=$(mktemp)
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || status=$?
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    rm -f "$log"
    return "$status"
}

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    pip_install "torch==2.13.0"
fi
target="."
[ "${1:-}" = "--dev" ] && target=".[dev]"
pip_install -e "$target"
