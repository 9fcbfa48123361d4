#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes .venv, installs the package with its test
# extras (matrix-synapse included), and runs pytest. Arguments go to pytest. The case board's
# browser tests need Debian's chromium (installed here when missing; Playwright drives it, its
# own browser download is never used) and node's oidc-provider (npm ci from the lockfile).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
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
