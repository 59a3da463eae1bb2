#!/usr/bin/env bash
# Install everything the test suite needs, then run it: lint, format, types, tests.
#
#   ./scripts/test.sh            # the whole suite (what CI runs)
#   ./scripts/test.sh -k replay  # extra arguments go to pytest
#
# Python packages go into .venv (created on first use). System packages that
# later parts of the suite need (PostgreSQL, Chromium) are installed here too,
# with apt-get, when those parts exist.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
