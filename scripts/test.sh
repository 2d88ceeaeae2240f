#!/usr/bin/env bash
# The whole test suite: formatting, then build + ctest (unit and integration, on a throwaway
# PostgreSQL), then the same under AddressSanitizer + UndefinedBehaviorSanitizer, then the unit tests
# under valgrind. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

echo "== formatting (clang-format --dry-run --Werror)"
git ls-files -- '*.c' '*.h' | xargs clang-format --dry-run --Werror

run_suite() {
	local dir=$1; shift
	echo "== build $dir $*"
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
	echo "== ctest $dir"
	ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900
}

run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -DPAYREMIND_SANITIZE=ON

echo "== valgrind (unit tests)"
vglog=$(mktemp)
for t in build/test_*; do
	[ -x "$t" ] || continue
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 "$t" >/dev/null 2>"$vglog" ||
		{ cat "$vglog"; echo "valgrind: $t failed"; exit 1; }
done
rm -f "$vglog"
echo "valgrind: clean"
