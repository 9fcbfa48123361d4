#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes .venv, installs the package with its test
# extras (matrix-synapse included), and runs pytest. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
exec .venv/bin/python -m pytest "$@"
