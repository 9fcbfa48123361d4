#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes .venv, installs the package with its test
# extras (matrix-synapse included), installs the Node test client (npm ci in
# tests/support/element) and runs pytest. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The Element crypto engine for tests/test_matrix_element.py (versions pinned by package-lock.json).
if [ ! -d tests/support/element/node_modules ]; then
    (cd tests/support/element && npm ci --no-audit --no-fund --loglevel=error)
fi
exec .venv/bin/python -m pytest "$@"
