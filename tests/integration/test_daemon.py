"""payremindd as a service: polling, --check-config, SIGHUP, batch requests, several daemons, kill -9."""

import collections
import os
import random
import re
import signal
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import daemon_cmd, wait_until, write_conf  # noqa: E402


def log_of(p):
    with open(p.log_path) as f:
        return f.read()


def stop(p, timeout=30):
    p.send_signal(signal.SIGTERM)
    return p.wait(timeout)


def test_check_config_reports_ok_or_every_error_with_its_line(ctx):
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms")
    p = subprocess.run(daemon_cmd(conf, "--check-config"), capture_output=True, text=True)
    assert (p.returncode, p.stdout.strip()) == (0, "configuration OK"), (p.returncode, p.stdout, p.stderr)
    bad = os.path.join(ctx.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write('sender = { short_code = "5551234"; };\n'
                'gateway = { timeout_ms = 5; dialect = "smoke"; };\n'
                'templates = { fr = "Payez {lien} ARRET"; };\n')
    p = subprocess.run(daemon_cmd(bad, "-n"), capture_output=True, text=True)
    assert p.returncode == 78, p
    lines = p.stderr.strip().splitlines()
    assert any(line.startswith(f"{bad}:1: ") and "short_code" in line for line in lines), lines
    assert any(line.startswith(f"{bad}:2: ") and "timeout_ms" in line for line in lines), lines
    assert any(line.startswith(f"{bad}:2: ") and "dialect" in line for line in lines), lines
    assert any(line.startswith(f"{bad}:3: ") and "{lien}" in line for line in lines), lines
    assert "configuration OK" not in p.stdout


def test_an_unmigrated_database_says_run_migrate_and_exits_78(ctx):
    # 78 is in the unit's RestartPreventExitStatus: systemd does not loop on a step only an operator can take.
    with ctx.db.empty("empty") as conninfo:
        conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", name="empty.conf",
                          database={"conninfo": conninfo})
        for args in (["--once"], []):
            p = subprocess.run(daemon_cmd(conf, *args), capture_output=True, text=True, timeout=30)
            assert p.returncode == 78 and "run payremindctl migrate" in p.stderr, (args, p.returncode, p.stderr)
            assert "no payremind schema" in p.stderr, p.stderr
        # A schema one migration behind this binary is refused the same way, naming both versions.
        assert harness.ctl(conf, "migrate").returncode == 0
        behind = psycopg2.connect(conninfo)
        behind.autocommit = True
        with behind.cursor() as c:
            c.execute("DELETE FROM payremind.schema_migrations WHERE version = "
                      "(SELECT max(version) FROM payremind.schema_migrations) RETURNING version")
            latest = c.fetchone()[0]
        behind.close()
        p = subprocess.run(daemon_cmd(conf, "--once"), capture_output=True, text=True, timeout=30)
        assert p.returncode == 78, (p.returncode, p.stderr)
        assert f"at version {latest - 1} and this payremind needs {latest}: run payremindctl migrate" in p.stderr, \
            p.stderr
    with open(os.path.join(harness.SRC, "systemd", "payremindd.service")) as f:
        unit = f.read()
    assert re.search(r"^RestartPreventExitStatus=.*\b78\b", unit, re.M), unit


def test_usage_errors_exit_64(ctx):
    for args in (["--bogus"], ["extra-arg"], ["-c"]):
        p = subprocess.run([os.path.join(harness.BIN, "payremindd"), *args], capture_output=True, text=True)
        assert p.returncode == 64 and "usage:" in p.stderr, (args, p.returncode, p.stderr)


def test_daemon_polls_registers_and_stops_cleanly(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url)
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances WHERE stopped_at IS NULL") == 1,
               what="heartbeat row")
    # Rows billing adds while the daemon runs go out at the next poll (1 s here).
    for i in range(10):
        db.add_due(f"P-{i}", f"+1514666{i:04d}")
    wait_until(lambda: len(gw.accepted()) == 10, what="10 SMS")
    assert stop(p) == 0
    assert db.one("SELECT stopped_at IS NOT NULL FROM payremind.instances") is True
    assert db.one("SELECT (last_batch->>'sent')::int FROM payremind.instances") is not None
    assert db.states() == {"sent": 10}


def test_transaction_pooling_polls_without_listen_or_prepared_statements(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"poll_interval_s": 3600},
                      database={"conninfo": db.pooled_conninfo(), "pooling": "transaction"})
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances") == 1, what="daemon up")
    db.add_due("U-1", "+15147770100")
    db.one("INSERT INTO payremind.batch_requests DEFAULT VALUES RETURNING id")
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.batch_requests WHERE finished_at IS NOT NULL") == 1,
               what="request answered by polling")
    assert len(gw.accepted()) == 1
    assert stop(p) == 0


def test_keyword_replies_go_out_from_their_short_code(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"poll_interval_s": 3600})
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances") == 1, what="daemon up")
    db.q("INSERT INTO payremind.replies (msisdn, short_code, kind, language, text) VALUES "
         "('+15145551111', '270282', 'opt_out', 'fr', 'ARO: vous ne recevrez plus de SMS. Aide 1-877-322-1414'),"
         "('+15145552222', '27022', 'help', 'en', 'ARO Collections. Help: 1-877-322-1414. Reply STOP to opt out.')")
    db.q("NOTIFY payremind_replies")
    wait_until(lambda: len(gw.accepted()) == 2, what="2 replies")
    got = {r["to"]: r for r in gw.accepted()}
    assert got["+15145551111"]["from"] == "270282" and got["+15145552222"]["from"] == "27022"
    assert got["+15145551111"]["text"].startswith("ARO: vous ne recevrez plus")
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.replies WHERE state = 'sent'") == 2,
               what="replies recorded")
    assert db.one("SELECT count(*) FROM payremind.replies WHERE gateway_message_id LIKE 'sbx-%%'") == 2
    assert "ARO: vous" not in log_of(p)  # texts never logged
    assert stop(p) == 0


def test_sigterm_with_a_slow_gateway_exits_inside_the_deadline_leaving_nothing_sending(ctx):
    gw = ctx.sandbox("--delay-ms", "1500")
    db = ctx.db
    for i in range(100):
        db.add_due(f"X-{i}", f"+1514333{i:04d}")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"timeout_ms": 3000, "max_in_flight": 8})
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sending'") >= 8,
               what="requests in flight")
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0
    # In-flight requests finish (1.5 s) well inside the deadline (timeout 3 s + 2 s).
    assert time.time() - t0 < 3 + 2 + 1, time.time() - t0
    states = db.states()
    assert "sending" not in states, states
    assert states.get("sent", 0) == len(gw.accepted()) and states.get("sent", 0) >= 8, states
    assert db.one("SELECT count(*) FROM payremind.due_accounts WHERE lease_owner IS NOT NULL") == 0


def test_second_signal_exits_at_once(ctx):
    gw = ctx.sandbox("--delay-ms", "5000")
    db = ctx.db
    db.add_due("Y-1", "+15143330999")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"timeout_ms": 8000}, schedule={"lease_s": 20})
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sending'") == 1,
               what="request in flight")
    p.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) != 0
    assert time.time() - t0 < 2
    assert "exiting at once" in log_of(p)


def test_batch_request_is_picked_and_answered(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"poll_interval_s": 3600})
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances WHERE last_batch_at IS NOT NULL") == 1,
               what="the start-up batch over")
    for i in range(3):
        db.add_due(f"Q-{i}", f"+1514777{i:04d}")
    rid = db.one("INSERT INTO payremind.batch_requests DEFAULT VALUES RETURNING id")
    db.q("NOTIFY payremind_batch")
    wait_until(lambda: db.one("SELECT finished_at IS NOT NULL FROM payremind.batch_requests WHERE id = %s",
                              rid), what="batch request answered")
    sent, picked = db.q("SELECT sent, picked_by::text FROM payremind.batch_requests WHERE id = %s", rid)[0]
    assert sent == 3 and picked == db.one("SELECT id::text FROM payremind.instances")
    assert len(gw.accepted()) == 3
    assert stop(p) == 0


def test_sighup_keeps_a_broken_config_and_swaps_a_good_one(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url)
    p = ctx.spawn(daemon_cmd(conf))
    db.add_due("R-1", "+15148880001", language="en")
    wait_until(lambda: len(gw.accepted()) == 1, what="first SMS")
    good = open(conf).read()
    with open(conf, "w") as f:
        f.write(good + 'templates = { en = "no link here STOP"; };\nretention = { days = 0; };\n')
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "keeping the running configuration" in log_of(p), what="reload refused")
    log = log_of(p)
    assert "has 2 errors" in log and "no {link}" in log and "retention.days" in log, log
    db.add_due("R-2", "+15148880002", language="en")
    wait_until(lambda: len(gw.accepted()) == 2, what="still sending with the old config")
    assert "ARO" in gw.accepted()[1]["text"]
    with open(conf, "w") as f:
        f.write(good.replace("lease_s = 10;", "lease_s = 30;") +
                'templates = { en = "NEW TEMPLATE from ARO {link} Reply STOP"; };\n')
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration from" in log_of(p), what="reload accepted")
    # A key that only a restart applies is named.
    assert "schedule.lease_s changed; that takes a restart to apply" in log_of(p), log_of(p)
    db.add_due("R-3", "+15148880003", language="en")
    wait_until(lambda: len(gw.accepted()) == 3, what="SMS after reload")
    assert gw.accepted()[2]["text"].startswith("NEW TEMPLATE from ARO https://pay.aro.ca/p/")
    assert stop(p) == 0


def test_three_daemons_send_20000_reminders_exactly_once(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    with db.conn.cursor() as c:
        c.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)
                     SELECT 'T-' || g, '+1514' || lpad((2000000 + g)::text, 7, '0'), 100 + g, current_date - 3
                       FROM generate_series(1, 20000) g""")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"max_in_flight": 32}, schedule={"batch_size": 200})
    procs = [ctx.spawn(daemon_cmd(conf)) for _ in range(3)]
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent'") == 20000,
               timeout=240, what="20000 sent")
    for p in procs:
        assert stop(p) == 0
    recs = gw.records()
    keys = collections.Counter(r["key"] for r in recs if 200 <= r["status"] < 300)
    assert len(keys) == 20000 and max(keys.values()) == 1, (len(keys), keys.most_common(3))
    assert len(recs) == 20000
    assert db.one("SELECT count(DISTINCT due_account_id) FROM payremind.reminders") == 20000
    # They shared the work (each logs the attempts it made).
    workers = sum(1 for p in procs if "result=ok" in log_of(p))
    assert workers >= 2, workers


def test_three_daemons_keep_the_gap_for_a_number_with_two_due_rows(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    # 1500 numbers, each with two due rows becoming due together: one SMS per number, not two. The
    # claim order puts each number's twins in neighbouring batches of 20, which different daemons
    # claim at the same moment: only the contact ledger stops both from going out.
    with db.conn.cursor() as c:
        c.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date, next_at)
                     SELECT 'G-' || g || '-' || k, '+1450' || lpad((5000000 + g)::text, 7, '0'), 100,
                            current_date - 3,
                            timestamptz '2000-01-01' + ((g - 1) / 20 * 40 + (k - 1) * 20 + mod(g - 1, 20))
                                                       * interval '1 ms'
                       FROM generate_series(1, 1500) g, generate_series(1, 2) k""")
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"batch_size": 20})
    procs = [ctx.spawn(daemon_cmd(conf)) for _ in range(3)]
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent'") >= 1500,
               timeout=120, what="1500 sent")
    # Each number's other row comes round again and is put off until the gap (24 h) has passed.
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.due_accounts WHERE next_step = 0 "
                              "AND next_at > now() + interval '23 hours'") == 1500, timeout=60,
               what="the twins put off by the gap")
    for p in procs:
        assert stop(p) == 0
    per_number = collections.Counter(r["to"] for r in gw.accepted())
    assert len(per_number) == 1500 and max(per_number.values()) == 1, per_number.most_common(3)
    assert db.one("SELECT count(*) FROM payremind.reminders") == 1500


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(ctx):
    gw = ctx.sandbox("--delay-ms", "20")
    db = ctx.db
    n = 5000
    with db.conn.cursor() as c:
        c.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)
                     SELECT 'K-' || g, '+1438' || lpad((3000000 + g)::text, 7, '0'), 100, current_date - 3
                       FROM generate_series(1, %s) g""", (n,))
    # Short leases so that what a killed daemon held comes back quickly (lease > 2 x timeout).
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"timeout_ms": 1000, "max_in_flight": 16},
                      schedule={"batch_size": 50, "lease_s": 3})
    rng = random.Random(20261127)
    procs = []
    for run in range(10):
        p = ctx.spawn(daemon_cmd(conf))
        procs.append(p)
        time.sleep(rng.uniform(0.1, 0.8))
        p.kill()
        p.wait(10)
    p = ctx.spawn(daemon_cmd(conf))
    procs.append(p)
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent'") == n,
               timeout=120, what=f"all {n} sent after 10 kills")
    assert stop(p) == 0
    recs = gw.records()
    accepted = [r for r in recs if 200 <= r["status"] < 300 and not r["duplicate"]]
    keys = collections.Counter(r["key"] for r in accepted)
    # Every reminder reached the gateway as exactly one SMS; repeats after a kill carried the same
    # Idempotency-Key and were answered from the gateway's memory.
    assert len(keys) == n and max(keys.values()) == 1, (len(keys), keys.most_common(2))
    # The kills did leave reminders in flight: the next daemons took them back when their leases ran out.
    rescued = sum(int(m) for p in procs for m in re.findall(r"rescue: (\d+) reminders and replies taken back", log_of(p)))
    assert rescued > 0, rescued
    assert {r["to"] for r in accepted} == {f"+1438{3000000 + g:07d}" for g in range(1, n + 1)}
    assert db.one("SELECT count(*) FROM payremind.reminders") == n
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE link_token IS NOT NULL") == 0


def test_a_daemon_frozen_inside_its_claim_transaction_sends_nothing_and_its_rows_go_once(ctx):
    """The claim, the creations and the rows handed back are one transaction: a daemon that stops inside
    it holds row locks, writes nothing another daemon can see, loses the locks once it has been idle
    for schedule.lease_s, and sends nothing of what it created when it wakes up, since its COMMIT
    fails."""
    gw = ctx.sandbox()
    db = ctx.db
    n = 100
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"batch_size": 50, "lease_s": 10})
    a = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: "starting" in log_of(a), timeout=20, what="daemon A started, its statements prepared")
    blocker = db.connect()  # holds the contact ledger: A's creation waits, inside its transaction
    with blocker.cursor() as c:
        c.execute("LOCK TABLE payremind.contacts IN EXCLUSIVE MODE")
    with db.conn.cursor() as c:
        c.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)
                     SELECT 'F-' || g, '+1819' || lpad((6000000 + g)::text, 7, '0'), 100, current_date - 3
                       FROM generate_series(1, %s) g""", (n,))
    in_db = "datname = current_database() AND pid <> pg_backend_pid()"
    wait_until(lambda: db.one(f"SELECT count(*) FROM pg_stat_activity WHERE {in_db} AND wait_event_type = 'Lock' "
                              "AND query LIKE '%%INSERT INTO payremind.contacts%%'") == 1, timeout=20,
               what="daemon A's creation waiting inside its claim transaction")
    # A holds its batch by row locks alone: no lease written, nothing created.
    free = db.one("SELECT count(*) FROM (SELECT 1 FROM payremind.due_accounts FOR UPDATE SKIP LOCKED) x")
    assert free == n - 50, (free, log_of(a))
    assert db.one("SELECT count(*) FROM payremind.due_accounts WHERE lease_owner IS NOT NULL") == 0
    os.kill(a.pid, signal.SIGSTOP)
    try:
        blocker.rollback()  # A's creation now runs; A, frozen, never commits
        wait_until(lambda: db.one(f"SELECT count(*) FROM pg_stat_activity WHERE {in_db} "
                                  "AND state = 'idle in transaction'") == 1, timeout=20,
                   what="A's transaction idle, its reminders created but not committed")
        # Another daemon meanwhile sends the other rows and skips A's.
        b = harness.summary(harness.run_once(conf))
        assert b["sent"] == n - 50, b
        assert db.one("SELECT count(*) FROM payremind.reminders") == n - 50
        # Idle for lease_s, A's session ends and its rows are due again, as they were.
        wait_until(lambda: db.one(f"SELECT count(*) FROM pg_stat_activity WHERE {in_db} "
                                  "AND state = 'idle in transaction'") == 0, timeout=30,
                   what="A's idle transaction ended by the server")
        b = harness.summary(harness.run_once(conf))
        assert b["sent"] == 50, b
    finally:
        os.kill(a.pid, signal.SIGCONT)
    # A wakes up with its creations answered but its COMMIT refused: it sends none of them.
    wait_until(lambda: "did not commit" in log_of(a), timeout=20, what="A's COMMIT refused")
    time.sleep(1)
    assert stop(a) == 0
    assert "result=ok" not in log_of(a)
    per_number = collections.Counter(r["to"] for r in gw.accepted())
    assert len(per_number) == n and max(per_number.values()) == 1, per_number.most_common(3)
    assert len(gw.records()) == n
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent'") == n


def test_three_daemons_share_the_rate(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"rate_per_second": 30.0})
    procs = [ctx.spawn(daemon_cmd(conf)) for _ in range(3)]
    # Let every daemon see the others' heartbeats (every 5 s) before there is work.
    wait_until(lambda: all("3 live daemons" in log_of(p) for p in procs), timeout=20, what="rate shared")
    with db.conn.cursor() as c:
        c.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)
                     SELECT 'S-' || g, '+1581' || lpad((4000000 + g)::text, 7, '0'), 100, current_date - 3
                       FROM generate_series(1, 240) g""")
    wait_until(lambda: len(gw.accepted()) == 240, timeout=60, what="240 sent")
    for p in procs:
        assert stop(p) == 0
    t = sorted(harness.record_time(r) for r in gw.accepted())
    span = t[-1] - t[0]
    # The rate counts segments (the default French text takes 2): 240 reminders at 30 segments/s in all take
    # about 16 s, and at least 8 s even if each counted once; three daemons at the full rate each would take
    # under 3 s.
    assert span >= 240 / 30 * 0.85, span
    per_second = collections.Counter(int(x - t[0]) for x in t)
    assert max(per_second.values()) <= 30 * 1.2 + 3, per_second



def test_the_rate_is_shared_by_the_daemons_on_one_code_only(ctx):
    # SPEC §11: gateway.rate_per_second is the rate of sender.short_code, shared by every daemon sending
    # from that code. Two daemons on 27022 take half each; the one on 270282 keeps its whole rate.
    gw = ctx.sandbox()
    db = ctx.db
    main = write_conf(ctx.tmp, db, gw.url, gateway={"rate_per_second": 30.0})
    other = write_conf(ctx.tmp, db, gw.url, gateway={"rate_per_second": 30.0}, short_code="270282",
                       name="other.conf")
    procs = [ctx.spawn(daemon_cmd(main)), ctx.spawn(daemon_cmd(main)), ctx.spawn(daemon_cmd(other))]
    wait_until(lambda: all("2 live daemons" in log_of(p) for p in procs[:2]), timeout=20, what="27022 shared")
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances WHERE short_code = '270282'"
                              " AND heartbeat_at > now() - interval '6 seconds'") == 1, what="270282's heartbeat")
    time.sleep(6)  # another heartbeat each, with all three live
    for p in procs:
        assert stop(p) == 0
    assert not any("3 live daemons" in log_of(p) for p in procs), [log_of(p)[-500:] for p in procs]
    assert "live daemons" not in log_of(procs[2]), log_of(procs[2])[-500:]
    assert db.q("SELECT short_code, count(*) FROM payremind.instances GROUP BY 1 ORDER BY 1") == \
        [("27022", 2), ("270282", 1)]


harness.main(globals())
