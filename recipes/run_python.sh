#!/usr/bin/env bash
# Shared by the recipe wrappers: run `python -m MODULE ARGS...` from the repository root with the repository's
# .venv/bin/python when it exists (else $PYTHON, else python3).
#
#   recipes/run_python.sh recipes.codec_recipe synthetic --dry-run
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
cd "$REPO"
exec "$PY" -m "$@"
