#!/usr/bin/env bash
# The whole test suite: formatting, then build + ctest (unit and integration, on a throwaway
# PostgreSQL), then the same under AddressSanitizer + UndefinedBehaviorSanitizer, then the libFuzzer
# targets (scripts/fuzz.sh), then the unit tests under valgrind. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

echo "== formatting (clang-format --dry-run --Werror)"
git ls-files -- '*.c' '*.h' | xargs clang-format --dry-run --Werror

# run_suite DIR [CTEST ARGS --] [CMAKE ARGS]
run_suite() {
	local dir=$1; shift
	local ctest_args=()
	if [ "${1:-}" = "--ctest" ]; then
		shift
		while [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
		shift
	fi
	echo "== build $dir $*"
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	echo "== ctest $dir ${ctest_args[*]}"
	ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900 "${ctest_args[@]}"
}

run_suite build -DPAYREMIND_TEST_CLOCK=ON
# Long tests (label `long`: the browser) run once, above, not again under the sanitizers.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan --ctest -LE long -- -DPAYREMIND_SANITIZE=ON -DPAYREMIND_TEST_CLOCK=ON

echo "== fuzzing (scripts/fuzz.sh 30: every libFuzzer target 30 s on its seed corpus)"
scripts/fuzz.sh 30

echo "== valgrind (unit tests)"
vglog=$(mktemp)
for t in build/test_*; do
	[ -x "$t" ] || continue
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$t" >/dev/null 2>"$vglog" ||
		{ cat "$vglog"; echo "valgrind: $t failed"; exit 1; }
done
rm -f "$vglog"
echo "valgrind: clean"
