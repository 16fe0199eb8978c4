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

# Only the binary depends on the HTTP server crate.
server_users=$(cargo tree -i cairn-server -e normal --prefix none --format '{p}' --locked 2>/dev/null | awk '{print $1}' | sort -u | grep -vxE 'cairn-(server|cli)' || true)
if [ -n "$server_users" ]; then
  echo "invariant broken: $(tr '\n' ' ' <<<"$server_users")depend(s) on cairn-server (only the binary may)" >&2
  fail=1
fi

# The application layer, authentication, the guardrails and the eval harness speak no HTTP: no server framework and no front door in
# their graphs.
http_server='^(axum|axum-core|axum-extra|actix-web|warp|poem|rmcp|cairn-server|cairn-mcp|cairn-cli)$'
for crate in cairn-app cairn-auth cairn-guard cairn-eval cairn-agent; do
  pattern=$http_server
  # The agents crate is an MCP *client*: rmcp is its way to external tool servers. (Cargo unifies
  # rmcp's features in the binary, so its server half is compiled there for cairn-mcp anyway.)
  [ "$crate" = cairn-agent ] && pattern='^(axum|axum-core|axum-extra|actix-web|warp|poem|cairn-server|cairn-mcp|cairn-cli)$'
  crate_http=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' --locked 2>/dev/null | awk '{print $1}' | sort -u | grep -E "$pattern" || true)
  if [ -n "$crate_http" ]; then
    echo "invariant broken: $crate depends on $(tr '\n' ' ' <<<"$crate_http")(it must not know HTTP)" >&2
    fail=1
  fi
done

# The runtime (config and wiring, what `cairn ingest`, `search`, `prompt` and `key` use) depends on
# no front door. (axum itself is in its graph: qdrant-client's tonic brings it.)
# (rmcp is: cairn-agent's MCP client, for agents' external tools.)
runtime_doors=$(cargo tree -p cairn-runtime -e normal --prefix none --format '{p}' --locked 2>/dev/null | awk '{print $1}' | sort -u | grep -E '^(cairn-server|cairn-mcp|cairn-cli)$' || true)
if [ -n "$runtime_doors" ]; then
  echo "invariant broken: cairn-runtime depends on $(tr '\n' ' ' <<<"$runtime_doors")(config and wiring must not depend on a front door)" >&2
  fail=1
fi

# Adapters depend inward only: on cairn-core (and the catalog crates on cairn-sqlx), on no other
# crate of ours.
for adapter in cairn-openai cairn-local cairn-candle cairn-qdrant cairn-postgres cairn-sqlite cairn-sqlx cairn-gateway cairn-prompts cairn-guard cairn-eval cairn-agent; do
  ours=$(cargo tree -p "$adapter" -e normal --depth 1 --prefix none --format '{p}' --locked 2>/dev/null | awk '{print $1}' | grep '^cairn-' | sort -u | grep -vxE "$adapter|cairn-core|cairn-sqlx" || true)
  if [ -n "$ours" ]; then
    echo "invariant broken: adapter $adapter depends on $(tr '\n' ' ' <<<"$ours")(adapters depend on cairn-core only)" >&2
    fail=1
  fi
done

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

[ "$fail" = 0 ] && echo "invariants: cairn-core has no I/O dependencies; only the binary depends on cairn-server; cairn-app, cairn-auth, cairn-guard, cairn-eval and cairn-agent know no HTTP server; cairn-runtime depends on no front door; adapters depend on cairn-core only; SQL only in the catalog crates; status codes only in the HTTP crates; every module documented"
exit "$fail"
