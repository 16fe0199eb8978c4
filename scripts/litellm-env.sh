#!/usr/bin/env bash
# The LiteLLM proxy, for `cairn bench gateway --litellm`: a virtual environment in a cache directory
# outside the repo, with prometheus_client so that its metrics are on as Cairn's are. Idempotent;
# prints the `litellm` executable as its last line. Not part of the test command.
# usage: scripts/litellm-env.sh [DIR]      (DIR defaults to $HOME/.cache/cairn/litellm-venv)
set -euo pipefail
VENV="${1:-$HOME/.cache/cairn/litellm-venv}"
REQUIREMENTS=("litellm[proxy]==1.106.2" prometheus_client==0.26.0)
stamp="$VENV/.cairn-requirements"
if [ ! -x "$VENV/bin/litellm" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
  python3 -m venv "$VENV" || { echo "litellm-env: cannot create a virtual environment at $VENV" >&2; exit 1; }
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" \
    || { echo "litellm-env: pip install ${REQUIREMENTS[*]} failed" >&2; exit 1; }
  echo "${REQUIREMENTS[*]}" > "$stamp"
  echo "litellm-env: installed ${REQUIREMENTS[*]} into $VENV" >&2
fi
echo "$VENV/bin/litellm"
