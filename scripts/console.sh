#!/usr/bin/env bash
# The console on the embedded default (SQLite, the example offices in config/liaisonbot.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/liaisonbot console "$@"
