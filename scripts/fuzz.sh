#!/usr/bin/env bash
# Fuzzing: builds the tree with clang and libFuzzer in build-fuzz/ (cmake -DPAYREMIND_FUZZ=ON), then runs
# every fuzz_<name> target for SECONDS (default 30) on a copy of its seed corpus tests/fuzz/corpus/<name>/
# (the committed corpus is never written). Prints per target the executions, the coverage (cov: edges,
# ft: features) and any crash; exits non-zero when a target crashed, leaked, timed out or found a failed
# check. Logs and crash artefacts go to a temporary directory whose path is printed (kept on failure).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=${1:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
	echo "usage: scripts/fuzz.sh [SECONDS]  (per target, default 30)" >&2
	exit 64
fi
scripts/deps.sh # clang, libclang-rt-14-dev (libFuzzer), llvm (llvm-symbolizer): installed when missing

echo "== build build-fuzz (clang, libFuzzer, ASan + UBSan)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAYREMIND_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/payremind-fuzz.XXXXXX")
echo "== fuzzing ${secs}s per target; logs and artefacts in $work"

# Symbolised stacks are needed to read a crash and for the suppressions, which name functions.
if ! command -v llvm-symbolizer >/dev/null && command -v llvm-symbolizer-14 >/dev/null; then
	ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-14)
	export ASAN_SYMBOLIZER_PATH
fi
export LSAN_OPTIONS=suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# One target in its own directory: a corpus copy, its artefacts, its temporary files, its log.
run_target() {
	local bin=$1 name=$2 dir=$work/$2
	mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$dir/corpus/"
	fi
	local rc=0
	TMPDIR=$dir/tmp "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

# What a run did, from its log: executions, last cov:/ft:, and the verdict.
report() {
	local name=$1 dir=$work/$1 rc execs cov ft
	rc=$(cat "$dir/rc" 2>/dev/null || echo "?")
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
	local artefacts
	artefacts=$(find "$dir/artifacts" -type f | sort)
	if [ "$rc" = 0 ] && [ -z "$artefacts" ] && ! grep -q '^==[0-9]*==ERROR' "$dir/log"; then
		printf '%-18s ok      execs=%-10s cov=%-6s ft=%-7s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}"
		return 0
	fi
	printf '%-18s FAILED  execs=%-10s cov=%-6s ft=%-7s exit=%s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$rc"
	grep -E '^(==[0-9]+==ERROR|SUMMARY:|.*check failed:|.*runtime error:)' "$dir/log" | head -5 | sed 's/^/    /'
	grep -E '^ +#[0-9]+ ' "$dir/log" | grep -vE ' in (fuzzer::|__sanitizer_print_stack_trace)' | head -12 |
		sed 's/^/    /'
	for a in $artefacts; do echo "    input: $a"; done
	echo "    log: $dir/log"
	return 1
}

# The targets of tests/fuzz/fuzz_*.c (not whatever an older build left behind), nproc at a time;
# reported in name order.
bins=()
for src in tests/fuzz/fuzz_*.c; do
	bin=build-fuzz/$(basename "$src" .c)
	[ -x "$bin" ] || { echo "fuzz: $bin was not built" >&2; exit 1; }
	bins+=("$bin")
done
jobs_max=$(nproc)
for bin in "${bins[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
	run_target "$bin" "${bin##*/fuzz_}" &
done
wait

failed=0
for bin in "${bins[@]}"; do
	report "${bin##*/fuzz_}" || failed=1
done

if [ "$failed" -ne 0 ]; then
	echo "fuzz: FAILED; reproduce with build-fuzz/fuzz_<name> <input>; everything is in $work"
	exit 1
fi
rm -rf "$work"
echo "fuzz: no crash, leak or failed check in ${#bins[@]} targets ($work removed)"
