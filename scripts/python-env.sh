#!/usr/bin/env bash
# A Python virtual environment with the third-party clients the compatibility tests drive (the
# official `openai` and `mcp` packages, LangChain's `langchain-openai`, selenium for the browser tests, junitparser for the eval reports), in a cache directory outside the repo. Idempotent; prints the
# environment's python as its last line.
# usage: scripts/python-env.sh [DIR]      (DIR defaults to ${CAIRN_VENV:-$HOME/.cache/cairn/venv})
set -euo pipefail
VENV="${1:-${CAIRN_VENV:-$HOME/.cache/cairn/venv}}"
REQUIREMENTS=(openai==3.54.0 mcp==2.3.0 selenium==4.50.0 junitparser==5.0.3 langchain-openai==1.7.4)
stamp="$VENV/.cairn-requirements"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  python3 -m venv "$VENV" || { echo "python-env: cannot create a virtual environment at $VENV (is python3-venv installed?)" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { echo "python-env: pip install ${REQUIREMENTS[*]} failed" >&2; exit 1; }
  echo "${REQUIREMENTS[*]}" > "$stamp"
  echo "python-env: installed ${REQUIREMENTS[*]} into $VENV"
fi
echo "$VENV/bin/python"
