#!/usr/bin/env bash
# Install everything the test suite needs, then run it: lint, format, types, tests.
#
#   ./scripts/test.sh            # the whole suite (what CI runs)
#   ./scripts/test.sh -k replay  # extra arguments go to pytest
#
# Python packages go into .venv (created on first use). PostgreSQL: the store
# tests use LEGATO_TEST_DATABASE_URL when it is set (its user must be allowed
# to create databases); otherwise they start a throwaway cluster of their own
# on 127.0.0.1 with the distribution's binaries, which are installed here
# (Debian/Ubuntu, apt-get) when missing. The distribution's default cluster is
# neither created nor started. The browser tests drive Debian's Chromium
# (installed here when missing) through Playwright.
set -euo pipefail
cd "$(dirname "$0")/.."

have_postgres_binaries() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

# Debian packages the suite needs and the machine lacks: PostgreSQL's binaries
# (unless LEGATO_TEST_DATABASE_URL points at a server) and Chromium for the
# browser tests (Playwright drives /usr/bin/chromium; it downloads no browser).
PACKAGES=()
if [ -z "${LEGATO_TEST_DATABASE_URL:-}" ] && ! have_postgres_binaries; then
    PACKAGES+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
    PACKAGES+=(chromium)
fi
if [ ${#PACKAGES[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "installing ${PACKAGES[*]} (Debian packages) for the tests..." >&2
        # No default PostgreSQL cluster: the tests start their own, in a temporary
        # folder. postgresql-common reads this before creating one; ucf keeps our file.
        if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
            $SUDO mkdir -p /etc/postgresql-common
            printf '%s\n' "# written by legato's scripts/test.sh" "create_main_cluster = false" |
                $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
        fi
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 \
            apt-get install -y -qq -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold "${PACKAGES[@]}" >/dev/null
    else
        echo "missing ${PACKAGES[*]} and no apt-get: install them (or set" \
            "LEGATO_TEST_DATABASE_URL); those tests will be skipped (and fail in CI)" >&2
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
