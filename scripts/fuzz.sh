#!/bin/sh
# fuzz.sh BIN_DIR SEED_DIR SECONDS [TARGET...] -- runs each libFuzzer
# target (default: every fuzz_* in BIN_DIR), one at a time, for SECONDS
# from its seeds (SEED_DIR/TARGET) and prints the edges it reached
# (libFuzzer's last "cov:" figure), one "TARGET EDGES" line each.
# With FUZZ_WORK set, new inputs and crash artifacts are kept in
# FUZZ_WORK/TARGET (so a later run goes on from them); without, they go to
# a scratch directory, so that every run starts from the seeds alone (what
# docs/benchmarks.md measures). A target that crashes is reported with its
# artifact and the script fails at the end; the seeds are never changed.
set -eu
bin=$1 seeds=$2 secs=$3
shift 3
[ $# -gt 0 ] || set -- $(cd "$bin" && ls fuzz_* | sed 's/^fuzz_//')
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
work=${FUZZ_WORK:-$scratch}
failed=0
for t in "$@"; do
	mkdir -p "$work/$t/corpus"
	log="$work/$t/fuzz.log"
	if "$bin/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=1024 -seed=1 \
		-artifact_prefix="$work/$t/" "$work/$t/corpus" "$seeds/$t" >"$log" 2>&1; then
		echo "$t $(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)"
	else
		echo "$t crash"
		grep -A 30 '^==[0-9]*==ERROR\|^SUMMARY\|Test unit written' "$log" | head -n 60 >&2
		failed=1
	fi
done
[ "$failed" = 0 ]
