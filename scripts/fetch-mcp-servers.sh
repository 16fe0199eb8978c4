#!/usr/bin/env bash
# Install the real MCP servers the agent tests call (tests/mcp-servers/package-lock.json, checked by npm's integrity hashes)
# into DIR with `npm ci`.   usage: scripts/fetch-mcp-servers.sh [DIR]
# DIR defaults to ${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/mcp-servers; prints the node_modules/.bin directory as the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "fetch-mcp-servers: error: $*" >&2; exit 1; }
case ${1:-} in -h|--help) sed -n '2,4s/^# \{0,1\}//p' "$0"; exit 0 ;; -*) die "unknown option: $1" ;; esac
[ $# -le 1 ] || die "usage: $0 [DIR]"
command -v npm >/dev/null 2>&1 || die "npm is required (Node.js 18 or later)"

DIR=${1:-${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/mcp-servers}
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
BIN=$DIR/node_modules/.bin
# Installed from this lock file already? Nothing to do.
if [ -x "$BIN/mcp-server-everything" ] && cmp -s tests/mcp-servers/package-lock.json "$DIR/package-lock.json"; then
  echo "$BIN"
  exit 0
fi
cp tests/mcp-servers/package.json tests/mcp-servers/package-lock.json "$DIR/"
echo "fetch-mcp-servers: npm ci in $DIR"
(cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
  || die "npm ci failed in $DIR (is the npm registry reachable?)"
[ -x "$BIN/mcp-server-everything" ] || die "mcp-server-everything is missing after npm ci"
echo "$BIN"
