#!/usr/bin/env bash
# Checks the architecture's cheap invariants (ARCHITECTURE.md, "Invariant:" lines) from the dependency
# graph and the sources. Prints one line when they hold; names the offender and exits 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0

# cairn-core does no I/O: no database driver, HTTP stack, async runtime or networking in its graph.
forbidden='^(sqlx|sqlx-[a-z]+|axum|axum-core|hyper|hyper-util|reqwest|tokio|mio|tonic|h2|async-openai|qdrant-client|qdrant-edge|mistralrs|candle-core|socket2)$'
core_deps=$(cargo tree -p cairn-core -e normal,build --prefix none --format '{p}' --locked 2>/dev/null | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$core_deps" || true)
if [ -n "$bad" ]; then
  echo "invariant broken: cairn-core depends on $(tr '\n' ' ' <<<"$bad")(it must do no I/O)" >&2
  fail=1
fi

# Only the catalog crates contain SQL (cairn-sqlx holds what SQLite and PostgreSQL share).
sql=$(grep -rlE 'sqlx::(query|query_as|query_scalar|QueryBuilder)' crates/*/src | grep -vE '^crates/cairn-(postgres|sqlite|sqlx)/' || true)
if [ -n "$sql" ]; then
  echo "invariant broken: SQL outside the catalog crates (cairn-sqlx, cairn-sqlite, cairn-postgres): $sql" >&2
  fail=1
fi

# Only the HTTP crates know status codes: cairn-server, and cairn-mcp for its /mcp endpoint's auth
# (cairn-testkit, a fake upstream for tests, plays the other side).
status=$(grep -rlE '\bStatusCode\b' crates/*/src | grep -vE '^crates/cairn-(server|mcp|testkit)/' || true)
if [ -n "$status" ]; then
  echo "invariant broken: HTTP status codes outside cairn-server and cairn-mcp: $status" >&2
  fail=1
fi

# Every crate and module says what it is in a leading //! line.
undocumented=$(for f in $(find crates -path '*/src/*.rs' -o -path '*/tests/it/main.rs' | sort); do
  head -n 1 "$f" | grep -q '^//!' || echo "$f"
done)
if [ -n "$undocumented" ]; then
  echo "invariant broken: files without a leading //! line: $undocumented" >&2
  fail=1
fi

[ "$fail" = 0 ] && echo "invariants: cairn-core has no I/O dependencies; SQL only in the catalog crates; status codes only in the HTTP crates; every module documented"
exit "$fail"
