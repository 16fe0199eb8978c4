#!/usr/bin/env bash
# Install the official OpenAI Node package the compatibility tests drive (tests/openai_compat/node/package-lock.json,
# checked by npm's integrity hashes) into DIR with `npm ci`.   usage: scripts/node-clients.sh [DIR]
# DIR defaults to ${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/node-clients; prints DIR as the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "node-clients: error: $*" >&2; exit 1; }
case ${1:-} in -h|--help) sed -n '2,4s/^# \{0,1\}//p' "$0"; exit 0 ;; -*) die "unknown option: $1" ;; esac
[ $# -le 1 ] || die "usage: $0 [DIR]"
command -v npm >/dev/null 2>&1 || die "npm is required (Node.js 18 or later)"

DIR=${1:-${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}/node-clients}
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
LOCK=tests/openai_compat/node/package-lock.json
if [ -d "$DIR/node_modules/openai" ] && cmp -s "$LOCK" "$DIR/package-lock.json"; then
  echo "$DIR"
  exit 0
fi
cp tests/openai_compat/node/package.json "$LOCK" "$DIR/"
echo "node-clients: npm ci in $DIR"
(cd "$DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) \
  || die "npm ci failed in $DIR (is the npm registry reachable?)"
echo "$DIR"
