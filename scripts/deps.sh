#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages payremind needs to build, test and run the demo,
# skipping those already installed. Needs root (or sudo).
set -euo pipefail

# `deps.sh` (or `deps.sh test`): everything the tests need. `deps.sh demo`: only what the demo needs
# (build, PostgreSQL, the sandbox gateway): no Kannel, nginx, browser or fuzzer.
demo=(
	build-essential cmake pkg-config
	libpq-dev libcurl4-openssl-dev uuid-dev libconfig-dev libjansson-dev libmicrohttpd-dev libssl-dev
	libcmocka-dev
	postgresql curl
)
tests=(
	clang-format valgrind
	systemd procps man-db  # the install test: systemd-analyze verify, ExecReload= kill, man: pages
	clang libclang-rt-14-dev llvm  # scripts/fuzz.sh: clang, its libFuzzer + sanitizer runtimes, llvm-symbolizer
	python3 python3-psycopg2
	kannel kannel-extras  # a real Kannel with its fake SMSC
	nginx-light openssl  # test_nginx: the shipped site in front of the listener, a self-signed certificate
	chromium chromium-driver python3-selenium  # test_browser: the payment page in a real browser
	prometheus  # promtool check rules on deploy/prometheus/payremind-rules.yml
	pgbouncer  # test_pooler and the pooled runs: PgBouncer 1.18 in transaction mode
	wrk  # bench/run --pages: page views per second through the listener
)
case "${1:-test}" in
demo) packages=("${demo[@]}") ;;
test) packages=("${demo[@]}" "${tests[@]}") ;;
*) echo "usage: scripts/deps.sh [demo|test]" >&2; exit 64 ;;
esac

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
