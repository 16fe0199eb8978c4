#!/usr/bin/env bash
# A Python virtual environment for the guardrail quality benchmark's labelled set
# (scripts/pii-dataset.py): Faker to generate personal data in six locales, and phonenumbers
# (libphonenumber) to keep only dialable phone numbers. Kept outside the repo; idempotent; prints
# the environment's python as its last line.
# usage: scripts/guard-bench-env.sh [DIR]   (DIR defaults to ${CAIRN_GUARD_BENCH_VENV:-$HOME/.cache/cairn/guard-bench-venv})
set -euo pipefail
VENV="${1:-${CAIRN_GUARD_BENCH_VENV:-$HOME/.cache/cairn/guard-bench-venv}}"
REQUIREMENTS=(faker==40.54.0 phonenumbers==9.0.43)
stamp="$VENV/.cairn-requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  python3 -m venv "$VENV" || { echo "guard-bench-env: cannot create a virtual environment at $VENV (is python3-venv installed?)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { echo "guard-bench-env: pip install ${REQUIREMENTS[*]} failed" >&2; exit 1; }
  echo "${REQUIREMENTS[*]}" > "$stamp"
  echo "guard-bench-env: installed ${REQUIREMENTS[*]} into $VENV"
fi
echo "$VENV/bin/python"
