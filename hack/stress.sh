#!/usr/bin/env bash
# Usage: hack/stress.sh RUNS COMMAND...
# Runs COMMAND RUNS times in a row while one busy loop per core keeps the machine loaded,
# and stops at the first failure: the tests must not fail by chance on a busy machine.
set -euo pipefail
runs=$1
shift
cores=$(nproc)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for ((i = 0; i < cores; i++)); do
	(while :; do :; done) &
	pids+=($!)
done
for ((run = 1; run <= runs; run++)); do
	start=$(date +%s)
	echo "== run $run of $runs, with $cores busy loops beside it" >&2
	"$@"
	echo "== run $run of $runs passed in $(($(date +%s) - start)) s" >&2
done
