#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes .venv, installs the package with its test
# extras (matrix-synapse included), installs the Node test clients (npm ci in
# tests/support/element and tests/support/oidc) and runs pytest. Arguments go to pytest. The case
# board's browser tests need Debian's chromium (installed here when missing; Playwright drives
# it, its own browser download is never used).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The Element crypto engine for tests/test_matrix_element.py (versions pinned by package-lock.json).
# Installed when node_modules is missing, incomplete or older than the lockfile; without
# Node/npm those tests skip (and fail when CI=true).
element=tests/support/element
if [ ! -f "$element/node_modules/.package-lock.json" ] \
        || [ "$element/package-lock.json" -nt "$element/node_modules/.package-lock.json" ]; then
    if command -v npm >/dev/null; then
        (cd "$element" && npm ci --no-audit --no-fund --loglevel=error)
    else
        echo "scripts/test.sh: npm not found; the Element tests will skip (fail with CI=true)" >&2
    fi
fi
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    fi
fi
if [ ! -d tests/support/oidc/node_modules/oidc-provider ]; then
    (cd tests/support/oidc && npm ci --no-audit --no-fund --loglevel=error)
fi
exec .venv/bin/python -m pytest "$@"
