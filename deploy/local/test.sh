#!/usr/bin/env bash
# Set up this machine if needed, then run every check: ruff, mypy (strict), pytest.
# Extra arguments go to pytest (e.g. `bash deploy/local/test.sh -k webhook`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
bash deploy/local/setup.sh --test
echo ">>> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo ">>> mypy"
.venv/bin/mypy
echo ">>> pytest"
exec .venv/bin/pytest -p no:cacheprovider "$@"
