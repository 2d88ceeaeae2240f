#!/usr/bin/env bash
# Throwaway PostgreSQL for the tests: `start STATE_DIR PAYREMINDCTL` creates a cluster in a temporary
# directory (as the postgres user when run as root: initdb refuses root), listening only on a Unix
# socket there, and a migrated template database; `stop STATE_DIR` stops it and removes everything;
# `outage STATE_DIR MODE SECONDS` stops it (pg_ctl -m fast or immediate), waits, and starts it again.
set -euo pipefail

cmd=$1 state=$2
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "pg_fixture: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
	[ -f "$state/dir" ] || return 0
	local dir; dir=$(cat "$state/dir")
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir" "$state"
}

# The server, started on the cluster of the state directory.
serve() {
	local dir=$1
	as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o \
		"-c listen_addresses='' -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		>/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
}

outage() {
	local mode=$1 seconds=$2 dir
	dir=$(cat "$state/dir")
	as_pg "$pgbin/pg_ctl" -D "$dir/data" -m "$mode" -w stop >/dev/null
	sleep "$seconds"
	serve "$dir"
}

start() {
	local ctl=$1 dir
	stop
	mkdir -p "$state"
	dir=$(mktemp -d /tmp/payremind-pg.XXXXXX)
	chmod 755 "$dir"
	echo "$dir" > "$state/dir"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
	as_pg "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$state/initdb.log" 2>&1 ||
		{ cat "$state/initdb.log" >&2; exit 1; }
	serve "$dir"
	cat > "$state/env" <<ENV
PGHOST=$dir
PGPORT=5432
PGUSER=postgres
ENV
	PGHOST=$dir PGUSER=postgres "$pgbin/createdb" payremind_template
	cat > "$state/migrate.conf" <<CONF
database = { conninfo = "host=$dir port=5432 user=postgres dbname=payremind_template"; };
CONF
	"$ctl" -c "$state/migrate.conf" migrate
	echo "pg_fixture: PostgreSQL ready on $dir"
}

case $cmd in
start) start "$3" ;;
stop) stop ;;
outage) outage "$3" "$4" ;;
*) echo "usage: $0 start STATE_DIR PAYREMINDCTL | stop STATE_DIR | outage STATE_DIR fast|immediate SECONDS" >&2; exit 64 ;;
esac
