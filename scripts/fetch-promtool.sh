#!/usr/bin/env bash
# Make Prometheus' `promtool` available without installing the prometheus service: use one on PATH, else extract it
# from Debian's prometheus .deb into DIR.   usage: scripts/fetch-promtool.sh [DIR]
# DIR defaults to ${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}; prints promtool's path as the last line.
set -euo pipefail

die() { echo "fetch-promtool: error: $*" >&2; exit 1; }
case ${1:-} in -h|--help) sed -n '2,4s/^# \{0,1\}//p' "$0"; exit 0 ;; -*) die "unknown option: $1" ;; esac
[ $# -le 1 ] || die "usage: $0 [DIR]"
works() { [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

# already on PATH?
if p=$(command -v promtool 2>/dev/null) && works "$p"; then
  echo "$p"
  exit 0
fi

DIR=${1:-${CAIRN_TOOLS_DIR:-$HOME/.cache/cairn-tools}}
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(cd "$DIR" && pwd)
DEST=$DIR/promtool
if works "$DEST"; then
  echo "$DEST"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get is required (Debian/Ubuntu)"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is required (Debian/Ubuntu)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP" "$DEST.part.$$"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
LOG=$TMP/log

# download (not install) the prometheus package; refresh the package lists once if it cannot be found
APT_OPTS=()
[ "$(id -u)" = 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)
download() { (cd "$TMP" && apt-get "${APT_OPTS[@]}" download -qq prometheus) >>"$LOG" 2>&1; }
if ! download; then
  [ "$(id -u)" = 0 ] || { tail -n 20 "$LOG" >&2; die "apt-get download prometheus failed (run as root to refresh the package lists)"; }
  apt-get update -qq >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; die "apt-get update failed"; }
  download || { tail -n 20 "$LOG" >&2; die "apt-get download prometheus failed"; }
fi
debs=("$TMP"/prometheus_*.deb)
if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then die "apt-get download did not produce prometheus_*.deb"; fi
dpkg-deb -x "${debs[0]}" "$TMP/x" || die "cannot unpack ${debs[0]##*/}"
[ -f "$TMP/x/usr/bin/promtool" ] || die "usr/bin/promtool not found in ${debs[0]##*/}"

install -m 0755 "$TMP/x/usr/bin/promtool" "$DEST.part.$$"
works "$DEST.part.$$" || die "extracted promtool does not run ($DEST.part.$$ --version failed)"
mv -f "$DEST.part.$$" "$DEST"

ver=$("$DEST" --version 2>&1 | head -n 1)
echo "promtool: installed from ${debs[0]##*/} ($ver)"
echo "$DEST"
