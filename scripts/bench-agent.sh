#!/usr/bin/env bash
# How often a small local model succeeds as an agent: Qwen2.5-Coder-0.5B-Instruct (the packaged GGUF, through mistral.rs
# on this machine's CPU) runs agent `researcher` (tool: `search`) on questions only the knowledge base answers, each
# RUNS times, through `cairn eval run`; prints the share of runs that searched and the share whose answer holds the fact.
# usage: scripts/bench-agent.sh [RUNS]    (RUNS defaults to 5; needs a built `cairn`: cargo build -p cairn-cli;
#        CAIRN_BENCH_REPORT=FILE keeps the eval report with every answer and step)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
CAIRN=${CAIRN_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}/debug/cairn}
[ -x "$CAIRN" ] || { echo "bench-agent: no cairn binary at $CAIRN; build it (cargo build -p cairn-cli) or set CAIRN_BIN" >&2; exit 1; }
MODELS=$(scripts/fetch-models.sh --with-qwen | tail -n 1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/docs"
cat > "$WORK/docs/install.md" <<'DOC'
# Installing Cairn

Cairn ships as one binary.

## On Linux

Unpack the archive and put `cairn` on your PATH; it needs glibc 2.31 or newer.

## On macOS

Run `brew install cairn`.
DOC
cat > "$WORK/docs/database.md" <<'DOC'
# Database

## PostgreSQL

Set `database.url` to a postgres:// URL to keep the catalog in PostgreSQL; vectors then go to pgvector in the same database.

## SQLite

Without a URL, the catalog is an SQLite file under the data directory.
DOC
cat > "$WORK/docs/leave.md" <<'DOC'
# Leave policy

Employees get 27 days of paid holiday a year. Parental leave is sixteen weeks at full pay.
DOC
cat > "$WORK/cairn.toml" <<TOML
[[models]]
name = "qwen"
provider = "local"
path = "$MODELS/qwen2.5-coder-0.5b-instruct.gguf"

[[agents]]
name = "researcher"
description = "It answers questions about the company handbook."
route = "qwen"
tools = ["search"]
max_steps = 4
deadline_secs = 300
TOML
cat > "$WORK/suite.yaml" <<YAML
name: agent-qwen
target: agent:researcher
repeat: $RUNS
concurrency: 1
temperature: 0.7
max_tokens: 200
dataset:
  cases:
    - id: glibc
      question: Which glibc version does Cairn need on Linux? Search the handbook.
      reference: "2.31"
    - id: holiday
      question: How many days of paid holiday do employees get? Search the handbook.
      reference: "27"
    - id: parental
      question: How long is parental leave? Search the handbook.
      reference: sixteen weeks
metrics:
  - metric: tool_called
    name: searched
    tool: search
  - metric: contains
    name: correct
    values: ["2.31", "27", "sixteen", "16"]
  - metric: step_count
    max: 4
YAML
export CAIRN__EMBEDDING__LOCAL="$MODELS/minilm"
(cd "$WORK" && "$CAIRN" ingest docs --collection handbook >/dev/null)
echo "bench-agent: $RUNS runs of each of 3 questions with Qwen2.5-Coder-0.5B (CPU) as agent researcher" >&2
(cd "$WORK" && "$CAIRN" eval run suite.yaml --json) > "$WORK/report.json" || true
# Keep the full report (every answer and step) where asked.
[ -n "${CAIRN_BENCH_REPORT:-}" ] && cp "$WORK/report.json" "$CAIRN_BENCH_REPORT"
python3 - "$WORK/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))[0]
runs = searched = correct = 0
for case in report["cases"]:
    ref = case["case"]["reference"].lower()
    for attempt in case["attempts"]:
        runs += 1
        steps = attempt["answer"].get("steps", []) if attempt.get("answer") else []
        searched += any(s.get("kind") == "tool" and s.get("tool") == "search" and s.get("status") == "ok" for s in steps)
        text = (attempt.get("answer") or {}).get("text", "").lower()
        correct += ref in text or (ref == "sixteen weeks" and "16 weeks" in text)
print(f"runs {runs}: searched {searched}/{runs} ({100*searched/max(runs,1):.0f}%), answer holds the fact {correct}/{runs} ({100*correct/max(runs,1):.0f}%)")
PY
