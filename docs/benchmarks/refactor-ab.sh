#!/bin/bash
# Side-by-side A/B of two `spectrans` binaries (before and after a refactoring): the small
# config's forward (batch 8, seq 512) and training step, 2 threads, alternating binaries, 5
# rounds, one JSON line per round and binary on stdout.
# Usage: docs/benchmarks/refactor-ab.sh BEFORE_BINARY AFTER_BINARY > raw.jsonl
set -euo pipefail
before=$1 after=$2
config=xtask/bench-configs/small.toml
for round in 1 2 3 4 5; do
  for which in before after; do
    if [ "$which" = before ]; then bin=$before; else bin=$after; fi
    forward=$("$bin" bench --config "$config" --batch 8 --iters 10 --threads 2 --json 2>/dev/null)
    train=$("$bin" bench --config "$config" --batch 8 --iters 5 --threads 2 --train --json 2>/dev/null)
    echo "{\"round\":$round,\"which\":\"$which\",\"forward\":$forward,\"train\":$train}"
  done
done
