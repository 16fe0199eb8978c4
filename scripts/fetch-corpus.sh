#!/usr/bin/env bash
# Fetch the retrieval golden set's corpus: the PostgreSQL 15 manual (HTML) from Debian's postgresql-doc-15 package,
# sha256-pinned, extracted into DIR/postgresql-15/.   usage: scripts/fetch-corpus.sh [DIR]
# DIR defaults to ${CAIRN_CORPUS_DIR:-$HOME/.cache/cairn-corpus}; prints the HTML directory as the last line:
# CAIRN_CORPUS=$(scripts/fetch-corpus.sh | tail -1)
set -euo pipefail

die() { echo "fetch-corpus: error: $*" >&2; exit 1; }
case ${1:-} in -h|--help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;; -*) die "unknown option: $1" ;; esac
[ $# -le 1 ] || die "usage: $0 [DIR]"

# The package the golden set (evals/golden/postgresql.jsonl) was written against. Debian's archive keeps only the newest
# revision in its package lists: when a point release replaces this one, the download below fails; update both values
# (apt-get download postgresql-doc-15 && sha256sum postgresql-doc-15_*.deb) and check that the golden answers still match.
PKG=postgresql-doc-15
PKG_VERSION=15.20-0+deb12u1
PKG_SHA=4c44bf2c599f208b3f46454a6cf7a72e25ec46ff74d37b59dd31ad76b00eebb7
HTML_IN_PKG=usr/share/doc/postgresql-doc-15/html
STAMP_TEXT="$PKG $PKG_VERSION $PKG_SHA"
update_hint="update PKG_VERSION and PKG_SHA in scripts/fetch-corpus.sh (then check evals/golden/postgresql.jsonl against the new manual)"

D=${1:-${CAIRN_CORPUS_DIR:-$HOME/.cache/cairn-corpus}}
mkdir -p "$D" || die "cannot create $D"
D=$(cd "$D" && pwd)
DEST=$D/postgresql-15
STAMP=$DEST/.fetched

# already there?
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] && [ -f "$DEST/$HTML_IN_PKG/index.html" ]; then
  echo "$DEST/$HTML_IN_PKG"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get is required (Debian/Ubuntu)"
command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is required (Debian/Ubuntu)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is required"
TMP=$(mktemp -d)
PART=$DEST.part.$$   # this run's own extraction, moved into place only when complete
trap 'rm -rf "$TMP" "$PART"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
LOG=$TMP/log

# download (not install) the pinned revision; refresh the package lists once if apt does not know it
APT_OPTS=()
[ "$(id -u)" = 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)
download() { (cd "$TMP" && apt-get "${APT_OPTS[@]}" download -qq "$PKG=$PKG_VERSION") >>"$LOG" 2>&1; }
if ! download; then
  [ "$(id -u)" = 0 ] && apt-get update -qq >>"$LOG" 2>&1 && download || {
    tail -n 5 "$LOG" >&2
    served=$(apt-cache policy "$PKG" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    if [ -n "$served" ] && [ "$served" != "(none)" ] && [ "$served" != "$PKG_VERSION" ]; then
      die "the mirror serves $PKG $served, not the pinned $PKG_VERSION: $update_hint"
    fi
    die "apt-get download $PKG=$PKG_VERSION failed (run as root to refresh the package lists, or $update_hint)"
  }
fi
debs=("$TMP/${PKG}_"*.deb)
if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then die "apt-get download did not produce ${PKG}_*.deb"; fi
got=$(sha256sum "${debs[0]}" | cut -d' ' -f1)
[ "$got" = "$PKG_SHA" ] || die "sha256 mismatch for ${debs[0]##*/}: expected $PKG_SHA, got $got; if Debian rebuilt the package, $update_hint"

rm -rf "$PART"
dpkg-deb -x "${debs[0]}" "$PART" || die "cannot unpack ${debs[0]##*/}"
[ -f "$PART/$HTML_IN_PKG/index.html" ] || die "$HTML_IN_PKG/index.html not found in ${debs[0]##*/}"
echo "$STAMP_TEXT" >"$PART/.fetched"
rm -rf "$DEST"
mv "$PART" "$DEST"

echo "corpus: fetched $PKG $PKG_VERSION into $DEST (sha256 verified, $(find "$DEST/$HTML_IN_PKG" -name '*.html' | wc -l) HTML pages)"
echo "$DEST/$HTML_IN_PKG"
