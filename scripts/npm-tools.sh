#!/usr/bin/env bash
# Install one of the npm packages the tests drive, from its checked-in lock file (npm ci: npm checks every package's
# integrity hash), outside the clone.   usage: scripts/npm-tools.sh NAME [DIR]
#   NAME mcp-servers    the reference MCP servers (tests/mcp-servers); prints DIR/node_modules/.bin
#   NAME node-clients   the official OpenAI Node package (tests/openai_compat/node); prints DIR
# DIR defaults to ${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/NAME; what it prints is the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "npm-tools: error: $*" >&2; exit 1; }
case ${1:-} in -h|--help|"") sed -n '2,6s/^# \{0,1\}//p' "$0"; [ -n "${1:-}" ]; exit $? ;; esac
NAME=$1
case $NAME in
  mcp-servers) SRC=tests/mcp-servers; CHECK=node_modules/.bin/mcp-server-everything; OUT=node_modules/.bin ;;
  node-clients) SRC=tests/openai_compat/node; CHECK=node_modules/openai/package.json; OUT=. ;;
  *) die "unknown package set \`$NAME\`; use mcp-servers or node-clients" ;;
esac
[ $# -le 2 ] || die "usage: $0 NAME [DIR]"
command -v npm >/dev/null 2>&1 || die "npm is required (Node.js 18 or later)"

DIR=${2:-${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/$NAME}
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
# Installed from this lock file already? Nothing to do.
if [ -e "$DIR/$CHECK" ] && cmp -s "$SRC/package-lock.json" "$DIR/package-lock.json"; then
  (cd "$DIR/$OUT" && pwd)
  exit 0
fi
cp "$SRC/package.json" "$SRC/package-lock.json" "$DIR/"
echo "npm-tools: npm ci in $DIR"
(cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
  || die "npm ci failed in $DIR (is the npm registry reachable?)"
[ -e "$DIR/$CHECK" ] || die "$CHECK is missing after npm ci"
(cd "$DIR/$OUT" && pwd)
