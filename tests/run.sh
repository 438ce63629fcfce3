#!/usr/bin/env bash
# Installs everything the tests need (system packages as root, a virtualenv with the project) and runs them.
# Usage: bash tests/run.sh [pytest args…]
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for bin in prometheus-node-exporter prometheus prometheus-alertmanager nginx tmux wrk rsvg-convert chromium psql npm openssl; do
  command -v "$bin" >/dev/null 2>&1 || need+=("$bin")
done
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages for: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus-node-exporter prometheus prometheus-alertmanager \
      nginx tmux wrk librsvg2-bin chromium postgresql openssl >/dev/null  # openssl: the HTTPS tests make a throwaway CA
    # node + npm build the real Umami server for tests/integration/test_umami_real.py (kept if the machine already has them).
    command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "warning: missing ${need[*]} (not root or no apt-get): tests that need them are skipped" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# A real Umami (npm) built once into ~/.cache/surgewatch-tests/umami; its tests are skipped when this cannot run.
if command -v npm >/dev/null 2>&1; then
  bash tests/install_umami.sh || echo "warning: Umami could not be built: tests/integration/test_umami_real.py is skipped" >&2
fi
.venv/bin/ruff check src tests
.venv/bin/mypy
.venv/bin/lint-imports --no-logo --no-cache  # architecture contracts: pyproject.toml [tool.importlinter]
exec .venv/bin/python -m pytest -q "$@"
