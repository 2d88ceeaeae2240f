#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a private PostgreSQL under var/, migrates,
# inserts sample due accounts (French and English), runs one batch of payremindd against the sandbox
# gateway (which prints every SMS), then starts payremindd with its listener and shows the payment page
# of the first SMS's link, and peeks at and redeems another link.
# `scripts/demo.sh --keep` leaves PostgreSQL and payremindd running afterwards, so that the links can be
# opened in a browser (stop them with `scripts/demo.sh stop`).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
var=$top/var

pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir() { readlink -f "$var/pg"; }

stop_pg() {
	[ -e "$var/pg/data/postmaster.pid" ] && as_pg "$(pgbin)/pg_ctl" -D "$(pgdir)/data" -m fast -w stop >/dev/null || true
}
stop_daemons() {
	local f
	for f in "$var/payremindd.pid" "$var/sandbox.pid"; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

if [ "${1:-}" = stop ]; then stop_daemons; stop_pg; exit 0; fi
keep=0
[ "${1:-}" = --keep ] && keep=1

echo "== 1. dependencies"
scripts/deps.sh demo  # no Kannel, nginx or browser: only the tests need those
echo "== 2. build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAYREMIND_TEST_CLOCK=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p "$var"

echo "== 3. private PostgreSQL under var/pg"
if [ ! -e "$var/pg" ]; then
	# As root, initdb runs as postgres, which must reach the folder; fall back to /tmp when it cannot.
	if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$var"; then
		ln -s "$(mktemp -d /tmp/payremind-demo-pg.XXXXXX)" "$var/pg"
	else
		mkdir -p "$var/pg"
	fi
	[ "$(id -u)" -ne 0 ] || chown postgres: "$(pgdir)"
	as_pg "$(pgbin)/initdb" -D "$(pgdir)/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if [ ! -e "$(pgdir)/data/postmaster.pid" ]; then
	as_pg "$(pgbin)/pg_ctl" -D "$(pgdir)/data" -l "$(pgdir)/postgres.log" -w start \
		-o "-c listen_addresses='' -k $(pgdir)" >/dev/null
fi
[ $keep -eq 1 ] || trap stop_pg EXIT
export PGHOST=$(pgdir) PGUSER=postgres
psql -q -d postgres -c "DROP DATABASE IF EXISTS payremind_demo WITH (FORCE)" -c "CREATE DATABASE payremind_demo"

# The sandbox gateway on a free port, printing every SMS it receives.
rm -f "$var/sandbox.port" "$var/sandbox.jsonl"
stop_daemons
build/sandbox-gateway --port 0 --port-file "$var/sandbox.port" --record "$var/sandbox.jsonl" &
echo $! > "$var/sandbox.pid"
trap '[ $keep -eq 1 ] || { stop_daemons; stop_pg; }' EXIT
for _ in $(seq 100); do [ -s "$var/sandbox.port" ] && break; sleep 0.05; done

# The demo opens the contact windows around the clock so that you see SMS at any hour; the shipped
# conf/payremind.conf keeps the legal windows (QC Mon-Sat 08:00-20:00, ...). The links in the SMS
# point at the demo's own listener (a loopback URL may be plain http), so they open on this machine.
port=${PAYREMIND_DEMO_PORT:-8788}
cat > "$var/demo.conf" <<CONF
database = { conninfo = "host=$(pgdir) user=postgres dbname=payremind_demo"; };
sender = { short_code = "27022"; };
gateway = { dialect = "json"; url = "http://127.0.0.1:$(cat "$var/sandbox.port")/sms"; rate_per_second = 0.0; };
token = { base_url = "http://127.0.0.1:$port/p/"; };
listen = { port = $port; public_url = "http://127.0.0.1:$port"; };
regions = {
  QC = { windows = ( { days = ["mon","tue","wed","thu","fri","sat","sun"]; start = "00:00"; end = "24:00"; } );
         holidays = "none"; notice_days = 5; };
  ON = { windows = ( { days = ["mon","tue","wed","thu","fri","sat","sun"]; start = "00:00"; end = "24:00"; } );
         holidays = "none"; notice_days = 6; max_per_7_days = 3; };
};
CONF

echo "== 4. migrate"
build/payremindctl -c "$var/demo.conf" migrate

echo "== 5. sample due accounts (as the billing system inserts them)"
psql -q -d payremind_demo <<'SQL'
INSERT INTO payremind.due_accounts
  (account_ref, msisdn, amount_cents, currency, due_date, language, region, time_zone, notice_sent_on) VALUES
  ('A-1001', '+15145550123', 12345, 'CAD', current_date - 3, 'fr', 'QC', 'America/Toronto', current_date - 30),
  ('A-1002', '+14385550177',  8050, 'CAD', current_date - 2, 'en', 'QC', 'America/Toronto', current_date - 30),
  ('A-1003', '+16475550142', 45000, 'CAD', current_date - 9, 'en', 'ON', 'America/Toronto', current_date - 40),
  ('A-1004', '+18195550110',  2999, 'CAD', current_date - 4, 'fr', 'QC', 'America/Toronto', current_date - 30),
  ('A-1005', '+15145550199',  1500, 'CAD', current_date - 2, 'fr', 'QC', 'America/Toronto', current_date - 30);
UPDATE payremind.due_accounts SET settled_at = now() WHERE account_ref = 'A-1005';
SQL
psql -d payremind_demo -c "SELECT account_ref, msisdn, amount_cents, due_date, language, region, settled_at IS NOT NULL AS settled FROM payremind.due_accounts ORDER BY id"

echo "-- payremindctl plan: per (region, time zone), what may go and when (SPEC §11; the demo sends unpaced)"
build/payremindctl -c "$var/demo.conf" plan

echo "== 6. payremindd --once (the sandbox prints each SMS; A-1005 is settled and gets none)"
build/payremindd -c "$var/demo.conf" --once
sleep 0.2
psql -d payremind_demo -c "SELECT d.account_ref, r.step, r.short_code, r.state, r.attempts, r.gateway_message_id FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id ORDER BY d.id"

links=$(grep -o '"text":"[^"]*' "$var/sandbox.jsonl" | grep -o "http://127.0.0.1:$port/p/[A-Za-z0-9_-]\{22\}")

echo "== 7. payremindd with its listener: the payment page of the first SMS's link"
build/payremindd -c "$var/demo.conf" > "$var/payremindd.log" 2>&1 &
echo $! > "$var/payremindd.pid"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
first=$(echo "$links" | head -n 1)
echo "GET $first"
curl -s -D - -o "$var/page.html" "$first" | grep -Ei '^(HTTP|content-security-policy|cache-control|referrer-policy)'
sed -e 's/<style>[^<]*<\/style>//' -e 's/<\/\(p\|h1\|h2\|li\|dd\)>/\n/g' -e 's/<[^>]*>/ /g' "$var/page.html" |
	sed -e 's/&#39;/'"'"'/g' -e 's/^ *//' -e '/^$/d' | tr -s ' ' | head -n 20
echo "(a GET counts as an opening and never spends the link: the page's own button does)"

echo "== 8. another link: token_peek never consumes, token_redeem works once (for ARO's portal)"
token=$(echo "$links" | sed -n 2p | sed 's|.*/||')
for q in token_peek token_peek token_redeem token_redeem; do
	echo "-- SELECT * FROM payremind.$q('<token of the second SMS>');"
	psql -d payremind_demo -c "SELECT * FROM payremind.$q('$token')"
done
if [ $keep -eq 1 ]; then
	echo "demo done; payremindd keeps serving. Open in a browser:"
	echo "$links" | sed 's/^/  /'
	echo "stop everything with: scripts/demo.sh stop"
else
	echo "demo done. scripts/demo.sh --keep leaves payremindd serving these links for a browser."
fi
