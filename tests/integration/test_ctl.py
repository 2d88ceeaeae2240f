"""payremindctl: batch --dry-run decisions, status, optout, usage errors and manual batches (SPEC §7)."""

import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import ctl, daemon_cmd, wait_until, write_conf  # noqa: E402

REASONS = {"settled", "paid", "held", "opted_out", "window", "holiday", "notice", "cap", "gap", "schedule",
           "unknown_region"}
KEYS = {"account_ref", "due_account_id", "step", "decision", "reason", "next_at"}
STATES = {"queued", "sending", "sent", "delivered", "failed", "expired", "cancelled", "unknown"}
EST = datetime.timezone(datetime.timedelta(hours=-5))
SUNDAY_NOON = "2026-11-29T12:00:00-05:00"
MONDAY_9 = "2026-11-30T09:00:00-05:00"
MONDAY_10 = datetime.datetime(2026, 11, 30, 10, 0, tzinfo=EST)


def builtin_conf(ctx):
    """A config with SPEC §3's built-in regions (no `regions` group)."""
    return write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", regions="")


def due(db, ref, msisdn, due_date="2026-11-20", **cols):
    """A due row with a fixed due date (the dry runs below decide at fixed instants) and its written
    notice sent long before (notice_sent_on=None: none was sent); returns its id."""
    cols.setdefault("notice_sent_on", "2026-10-01")
    names = ["account_ref", "msisdn", "amount_cents", "due_date"] + list(cols)
    vals = [ref, msisdn, 5000, due_date] + list(cols.values())
    return db.one(f"INSERT INTO payremind.due_accounts ({', '.join(names)}) VALUES "
                  f"({', '.join(['%s'] * len(vals))}) RETURNING id", *vals)


def reminder(db, due_id, step, state, **cols):
    """A reminder of due row due_id (its number copied), for states and contact history."""
    names = ["due_account_id", "step", "msisdn", "short_code", "language", "state"] + list(cols)
    sql = (f"INSERT INTO payremind.reminders ({', '.join(names)}) SELECT %s, %s, msisdn, '27022', language, %s"
           + ", %s" * len(cols) + " FROM payremind.due_accounts WHERE id = %s RETURNING id")
    return str(db.one(sql, due_id, step, state, *cols.values(), due_id))


def contact(db, msisdn, sent_at):
    """A past contact of msisdn: a reminder sent at sent_at, on a due row with nothing left to send."""
    did = due(db, f"H-{msisdn}-{sent_at.timestamp():.0f}", msisdn, next_step=3, next_at=None)
    reminder(db, did, 0, "sent", sent_at=sent_at)


def dry_run(conf, *args):
    p = ctl(conf, "batch", "--dry-run", "--json", *args)
    assert p.returncode == 0, (p.returncode, p.stderr)
    rows = json.loads(p.stdout)
    assert isinstance(rows, list), rows
    for r in rows:
        assert set(r) == KEYS, r
        assert r["decision"] in ("send", "skip"), r
        assert (r["reason"] is None) == (r["decision"] == "send"), r
        assert r["reason"] is None or r["reason"] in REASONS, r
    return rows


def by_ref(rows):
    return {r["account_ref"]: r for r in rows}


def snapshot(db):
    """Everything a dry run must leave untouched."""
    return (db.q("SELECT id, next_step, next_at, lease_owner FROM payremind.due_accounts ORDER BY id"),
            db.q("SELECT id, state, attempts, next_attempt_at FROM payremind.reminders ORDER BY id"),
            db.one("SELECT count(*) FROM payremind.payment_tokens"),
            db.one("SELECT count(*) FROM payremind.batch_requests"))


def test_dry_run_quebec_sunday_is_window_and_monday_morning_sends(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    refs = [f"QC-{i}" for i in range(4)]
    for i, ref in enumerate(refs):
        due(db, ref, f"+1514555{i:04d}", language="fr" if i % 2 else "en")
    before = snapshot(db)
    sunday = by_ref(dry_run(conf, "--at", SUNDAY_NOON))
    assert sorted(sunday) == refs, sunday
    assert {(r["decision"], r["reason"], r["step"]) for r in sunday.values()} == {("skip", "window", 0)}, sunday
    monday = by_ref(dry_run(conf, "--at", MONDAY_9))
    assert sorted(monday) == refs, monday
    assert {(r["decision"], r["reason"]) for r in monday.values()} == {("send", None)}, monday
    assert {r["due_account_id"] for r in monday.values()} == {r[0] for r in db.q(
        "SELECT id FROM payremind.due_accounts")}
    # The table says the same, with when each row may go (Monday 08:00 in Québec) and the totals.
    p = ctl(conf, "batch", "--dry-run", "--at", SUNDAY_NOON)
    assert p.returncode == 0, p.stderr
    for ref in refs:
        line = next(line for line in p.stdout.splitlines() if line.startswith(ref + " "))
        assert "window" in line and "2026-11-30 08:00 -05:00" in line, line
    assert "window 4" in p.stdout, p.stdout
    # Read-only: nothing created, claimed or changed.
    assert snapshot(db) == before


def test_dry_run_gives_each_skip_its_reason(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    at = MONDAY_10
    due(db, "R-send", "+15145550001")
    due(db, "R-settled", "+15145550002", settled_at=at - datetime.timedelta(days=1))
    due(db, "R-held", "+15145550003", contact_hold="dispute")
    due(db, "R-optout", "+15145550004")
    db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES ('+15145550004', 'keyword')")
    due(db, "R-notice", "+15145550005", notice_sent_on="2026-11-28")  # QC: 5 days after the notice
    due(db, "R-no-notice", "+15145550015", notice_sent_on=None)  # QC: no notice sent, nothing goes
    due(db, "R-no-notice-bc", "+16045550016", notice_sent_on=None, region="BC",
        time_zone="America/Vancouver")  # BC has no notice delay
    due(db, "R-early", "+15145550006", due_date="2026-11-30")  # reminder 0 is due on 12-01
    flying = due(db, "R-flying", "+15145550007")
    reminder(db, flying, 0, "sending", attempts=1, lease_until=at + datetime.timedelta(minutes=1))
    retry = due(db, "R-retry", "+15145550008")
    reminder(db, retry, 0, "queued", attempts=1, next_attempt_at=at + datetime.timedelta(hours=1))
    due(db, "R-region", "+15145550009", region="NB")
    due(db, "R-cap", "+14165550010", region="ON", time_zone="America/Toronto")
    for days in (2, 3, 4):  # ON: at most 3 contacts in 7 days
        contact(db, "+14165550010", at - datetime.timedelta(days=days))
    due(db, "R-gap", "+15145550011")
    contact(db, "+15145550011", at - datetime.timedelta(hours=2))
    # Two rows of one number: the first goes, the second waits for the gap, as in the daemon's batch.
    due(db, "R-twin-1", "+15145550012")
    due(db, "R-twin-2", "+15145550012", due_date="2026-11-19")
    # Step 0 final (cancelled): the next step (offset 7: due 11-27) is the one considered.
    moved = due(db, "R-step1", "+15145550013")
    reminder(db, moved, 0, "cancelled")
    due(db, "R-done", "+15145550014", next_step=3)  # every reminder sent: not open
    rows = by_ref(dry_run(builtin_conf(ctx), "--at", at.isoformat()))
    got = {ref: r["reason"] for ref, r in rows.items() if ref.startswith("R-")}
    assert got == {
        "R-send": None, "R-settled": "settled", "R-held": "held", "R-optout": "opted_out", "R-notice": "notice",
        "R-early": "schedule", "R-flying": "schedule", "R-retry": "schedule", "R-region": "unknown_region",
        "R-cap": "cap", "R-gap": "gap", "R-twin-1": None, "R-twin-2": "gap", "R-step1": None,
        "R-no-notice": "notice", "R-no-notice-bc": None,
    }, got
    assert rows["R-step1"]["step"] == 1 and rows["R-send"]["step"] == 0
    assert not any(ref.startswith("H-") for ref in rows), "rows with nothing left to send are not open"
    # Christmas is a Québec holiday.
    xmas = by_ref(dry_run(conf, "--at", "2026-12-25T10:00:00-05:00"))
    assert xmas["R-send"]["reason"] == "holiday", xmas["R-send"]
    # --account shows that account only, still counting its number's other rows (the twin's gap).
    only = dry_run(conf, "--at", at.isoformat(), "--account", "R-twin-2")
    assert [(r["account_ref"], r["reason"]) for r in only] == [("R-twin-2", "gap")], only


def test_dry_run_rejects_an_instant_without_offset_or_unparseable(ctx):
    conf = builtin_conf(ctx)
    for at in ("2026-11-30T09:00:00", "2026-11-30", "tomorrow", "2026-02-30T09:00:00-05:00",
               "2026-11-30T25:00:00Z"):
        p = ctl(conf, "batch", "--dry-run", "--at", at)
        assert p.returncode == 64, (at, p.returncode, p.stdout, p.stderr)
        assert at in p.stderr and "2026-11-30T09:00:00-05:00" in p.stderr, p.stderr
        assert p.stdout == "", p.stdout
    for at in ("2026-11-30T09:00:00Z", "2026-11-30 09:00-0500", "2026-11-30T09:00:00.5+01:00"):
        assert ctl(conf, "batch", "--dry-run", "--at", at).returncode == 0, at


def test_status_json_matches_the_database(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    states = ["queued", "queued", "sent", "sent", "sent", "delivered", "failed", "cancelled", "unknown",
              "unknown"]
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    ids = {}
    for i, state in enumerate(states):
        did = due(db, f"S-{i}", f"+1514777{i:04d}")
        ids[i] = reminder(db, did, 0, state, sent_at=None if state in ("queued", "failed") else an_hour_ago,
                          last_error="timeout after the request was sent" if state == "unknown" else None)
    db.q("UPDATE payremind.reminders SET created_at = now() - interval '2 hours' WHERE id = %s", ids[1])
    for n in ("+15145551001", "+15145551002", "+15145551003"):
        db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES (%s, 'keyword')", n)
    db.q("""INSERT INTO payremind.instances (id, hostname, pid, version, status, heartbeat_at, stopped_at,
                                             last_batch_at, last_batch) VALUES
        ('00000000-0000-4000-8000-000000000001', 'live-a', 101, '0.1.0', 'idle', now(), NULL,
         now() - interval '10 minutes', '{"sent": 9, "failed": 0, "retried": 0, "unknown": 0, "rows_skipped": 0,
                                          "rows_closed": 0}'),
        ('00000000-0000-4000-8000-000000000002', 'stale', 102, '0.1.0', 'idle', now() - interval '1 minute',
         NULL, NULL, NULL),
        ('00000000-0000-4000-8000-000000000003', 'stopped', 103, '0.1.0', 'stopped', now(), now(), NULL, NULL)
    """)
    db.q("""INSERT INTO payremind.batch_requests (picked_by, picked_at, finished_at, sent, failed, retried,
                                                  unknown, rows_skipped, rows_closed)
            VALUES ('00000000-0000-4000-8000-000000000001', now() - interval '2 minutes',
                    now() - interval '1 minute', 4, 1, 2, 0, 3, 1)""")
    p = ctl(conf, "status", "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert {"reminders", "oldest_queued", "opt_outs", "daemons", "last_batch"} <= set(st), st
    counts = dict(db.q("SELECT state, count(*) FROM payremind.reminders GROUP BY state"))
    assert set(st["reminders"]) == STATES, st["reminders"]
    assert st["reminders"] == {s: counts.get(s, 0) for s in STATES}, st["reminders"]
    assert st["oldest_queued"]["id"] == ids[1] and st["oldest_queued"]["account_ref"] == "S-1", st
    assert 7000 <= st["oldest_queued"]["age_s"] <= 7400, st["oldest_queued"]
    assert st["opt_outs"] == 3
    assert [(d["id"], d["hostname"], d["pid"]) for d in st["daemons"]] == [
        ("00000000-0000-4000-8000-000000000001", "live-a", 101)], st["daemons"]
    # The latest batch is the finished request (1 min ago), newer than the daemon's own record.
    lb = st["last_batch"]
    assert (lb["daemon"], lb["sent"], lb["failed"], lb["retried"], lb["rows_skipped"], lb["rows_closed"]) == (
        "00000000-0000-4000-8000-000000000001", 4, 1, 2, 3, 1), lb
    assert sorted(u["id"] for u in st["unknown"]) == sorted([ids[8], ids[9]]), st["unknown"]
    assert {u["account_ref"] for u in st["unknown"]} == {"S-8", "S-9"}
    # The human form says the same things.
    p = ctl(conf, "status")
    assert p.returncode == 0, p.stderr
    assert "unknown: 2 reminders" in p.stdout and ids[8] in p.stdout and "S-8" in p.stdout, p.stdout
    assert "opt-outs: 3" in p.stdout and "daemons: 1 live" in p.stdout and "live-a" in p.stdout, p.stdout
    assert "queued 2" in p.stdout and "sent 3" in p.stdout, p.stdout


def test_status_of_an_empty_database(ctx):
    p = ctl(builtin_conf(ctx), "status", "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["reminders"] == {s: 0 for s in STATES}
    assert (st["oldest_queued"], st["opt_outs"], st["daemons"], st["last_batch"]) == (None, 0, [], None), st


def test_optout_add_list_remove_round_trip(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    number = "+15145552222"
    did = due(db, "O-1", number)
    rid = reminder(db, did, 0, "queued", attempts=1, link_token="x" * 22)
    other = reminder(db, due(db, "O-2", "+15145553333"), 0, "queued")
    p = ctl(conf, "optout", "add", number)
    assert p.returncode == 0, p.stderr
    assert db.q("SELECT source FROM payremind.opt_outs WHERE msisdn = %s", number) == [("operator",)]
    assert db.q("SELECT state, link_token FROM payremind.reminders WHERE id = %s", rid) == [("cancelled", None)]
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", other) == "queued"
    assert ctl(conf, "optout", "add", number).returncode == 0  # again: nothing changes
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 1
    p = ctl(conf, "optout", "list")
    assert p.returncode == 0 and number in p.stdout and "operator" in p.stdout, p
    assert number in ctl(conf, "optout", "list", number).stdout
    # The daemon parks an opted-out row; removing the opt-out makes it claimable again (trigger).
    db.q("UPDATE payremind.due_accounts SET next_at = NULL WHERE id = %s", did)
    p = ctl(conf, "optout", "remove", number)
    assert p.returncode == 0, p.stderr
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    assert db.one("SELECT next_at IS NOT NULL FROM payremind.due_accounts WHERE id = %s", did)
    assert number not in ctl(conf, "optout", "list").stdout
    assert ctl(conf, "optout", "remove", number).returncode == 0
    for bad in ("5145552222", "+1514555222", "+10145552222", "+15141552222", "+33612345678", "+1 514 555 2222"):
        for action in ("add", "remove", "list"):
            p = ctl(conf, "optout", action, bad)
            assert p.returncode == 65, (action, bad, p.returncode, p.stderr)
            assert "+1NPANXXXXXX" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0


def test_bad_arguments_exit_64_with_one_usage_line(ctx):
    conf = builtin_conf(ctx)
    cases = [
        ["migrate", "extra"],
        ["batch", "--bogus"], ["batch", "-x"], ["batch", "extra"], ["batch", "--timeout"],
        ["batch", "--timeout", "0"], ["batch", "--timeout", "soon"], ["batch", "--timeout", "-3"],
        ["batch", "--json"], ["batch", "--at", MONDAY_9],
        ["batch", "--dry-run", "--account", ""],
        ["status", "--bogus"], ["status", "now"],
        ["optout"], ["optout", "purge", "+15145550123"], ["optout", "add"], ["optout", "remove"],
        ["optout", "add", "+15145550123", "+15145550124"], ["optout", "--bogus", "list"],
        ["optout", "list", "--reason", "why"], ["optout", "add", "+15145550123", "--reason", "two\nlines"],
        ["pause", "now"], ["pause", "--reason", ""], ["pause", "--reason", "x" * 501], ["resume", "--bogus"],
        ["history"], ["history", "--account", "A-1", "--msisdn", "+15145550123"], ["history", "--account", ""],
        ["reminders", "--state", "lost"], ["reminders", "--limit", "0"], ["reminders", "--since", "yesterday"],
        ["reminders", "extra"],
        ["resolve"], ["resolve", "00000000-0000-4000-8000-000000000001"],
        ["resolve", "00000000-0000-4000-8000-000000000001", "--as", "delivered"],
        ["inbound", "--since", "last week"], ["inbound", "extra"],
    ]
    for args in cases:
        p = ctl(conf, *args)
        assert p.returncode == 64, (args, p.returncode, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith(f"payremindctl {args[0]}: "), (args, lines)
        assert lines[1].startswith(f"usage: payremindctl [-c FILE] {args[0]}"), (args, lines)
        assert p.stdout == "", (args, p.stdout)
    for args in (["frob"], []):
        p = ctl(conf, *args)
        assert p.returncode == 64 and "usage: payremindctl" in p.stderr, (args, p.returncode, p.stderr)
    for cmd in ("migrate", "batch", "status", "optout", "pause", "resume", "history", "reminders", "resolve",
                "inbound", "report"):
        p = ctl(conf, cmd, "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"usage: payremindctl [-c FILE] {cmd}"), (cmd, p)
    assert ctl(conf, "status").returncode == 0  # the config and database used above are fine


def test_unreachable_database_exits_69_and_bad_config_78(ctx):
    bad_db = os.path.join(ctx.tmp, "nodb.conf")
    with open(builtin_conf(ctx)) as f:
        text = f.read()
    with open(bad_db, "w") as f:
        f.write(text.replace(f"dbname={ctx.db.name}", "dbname=no_such_database"))
    for args in (["status"], ["batch", "--dry-run"], ["optout", "list"], ["batch", "--timeout", "1"]):
        p = ctl(bad_db, *args)
        assert p.returncode == 69 and "database.conninfo" in p.stderr, (args, p.returncode, p.stderr)
    broken = os.path.join(ctx.tmp, "broken.conf")
    with open(broken, "w") as f:
        f.write(text.replace('short_code = "27022"', 'short_code = "55555"'))
    p = ctl(broken, "status")
    assert p.returncode == 78 and f"{broken}:" in p.stderr, (p.returncode, p.stderr)


def test_batch_without_a_daemon_exits_69_at_once(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    # A daemon that stopped, and one whose heartbeat is older than 20 s, are not live.
    db.q("""INSERT INTO payremind.instances (id, hostname, pid, version, heartbeat_at, stopped_at) VALUES
            ('00000000-0000-4000-8000-000000000002', 'stale', 102, 'x', now() - interval '1 minute', NULL),
            ('00000000-0000-4000-8000-000000000003', 'gone', 103, 'x', now(), now())""")
    t0 = time.time()
    p = ctl(conf, "batch", "--timeout", "30")
    elapsed = time.time() - t0
    assert p.returncode == 69, (p.returncode, p.stdout, p.stderr)
    assert elapsed < 10, elapsed
    assert p.stderr.strip() == ("payremindctl batch: no payremindd is running (no heartbeat in the last 20 s): "
                                "start it, or run payremindd --once for one batch in-process"), p.stderr
    # No request is left behind for a daemon to run later by surprise.
    assert db.one("SELECT count(*) FROM payremind.batch_requests") == 0


def test_batch_that_no_live_daemon_picks_is_withdrawn_after_the_timeout(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    # A daemon whose heartbeat is fresh but which never answers (hung): the timeout applies.
    db.q("INSERT INTO payremind.instances (id, hostname, pid, version) VALUES (%s, 'hung', 1, 'x')", FAKE_DAEMON)
    t0 = time.time()
    p = ctl(conf, "batch", "--timeout", "2")
    elapsed = time.time() - t0
    assert p.returncode == 69, (p.returncode, p.stdout, p.stderr)
    assert 2 <= elapsed < 20, elapsed
    assert p.stderr.strip() == ("payremindctl batch: no payremindd picked up the request within 2 s; is the "
                                "daemon running? (payremindd --once runs a batch in-process)"), p.stderr
    assert db.one("SELECT count(*) FROM payremind.batch_requests") == 0


FAKE_DAEMON = "00000000-0000-4000-8000-00000000000f"


def batch_in_background(ctx, conf, timeout):
    """Start `payremindctl batch` and play the daemon's part by hand: returns (process, request id)."""
    ctx.db.q("INSERT INTO payremind.instances (id, hostname, pid, version) VALUES (%s, 'fake-host', 1, 'x')",
             FAKE_DAEMON)
    p = subprocess.Popen([os.path.join(harness.BIN, "payremindctl"), "-c", conf, "batch", "--timeout",
                          str(timeout)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx.cleanups.append(lambda: p.poll() is None and (p.kill(), p.wait()))
    wait_until(lambda: ctx.db.one("SELECT count(*) FROM payremind.batch_requests") == 1, what="request row")
    rid = ctx.db.one("SELECT id FROM payremind.batch_requests")
    ctx.db.q("UPDATE payremind.batch_requests SET picked_by = %s, picked_at = now() WHERE id = %s",
             FAKE_DAEMON, rid)
    return p, rid


def test_batch_prints_the_figures_the_picking_daemon_writes(ctx):
    conf = builtin_conf(ctx)
    p, rid = batch_in_background(ctx, conf, 10)
    time.sleep(0.5)
    assert p.poll() is None, "picked but not finished: still waiting"
    ctx.db.q("UPDATE payremind.batch_requests SET finished_at = now(), sent = 7, failed = 1, retried = 2,"
             " unknown = 3, rows_skipped = 4, rows_closed = 5 WHERE id = %s", rid)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (p.returncode, err)
    assert out == (f"batch {rid} done by {FAKE_DAEMON}: sent=7 failed=1 retried=2 unknown=3 rows_skipped=4 "
                   "rows_closed=5\n"), out


def test_batch_reports_a_daemon_error_or_a_batch_that_never_ends_with_69(ctx):
    conf = builtin_conf(ctx)
    p, rid = batch_in_background(ctx, conf, 10)
    ctx.db.q("UPDATE payremind.batch_requests SET finished_at = now(), error = 'database connection lost'"
             " WHERE id = %s", rid)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 69 and out == "", (p.returncode, out, err)
    assert f"batch {rid} failed on payremindd {FAKE_DAEMON} (fake-host): database connection lost" in err, err
    ctx.db.q("DELETE FROM payremind.batch_requests")
    ctx.db.q("DELETE FROM payremind.instances")
    # Picked, never finished: it waits the timeout again from the pick, then says where it runs.
    t0 = time.time()
    p, rid = batch_in_background(ctx, conf, 1)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 69 and time.time() - t0 >= 1, (p.returncode, err)
    assert f"batch {rid} is still running on payremindd {FAKE_DAEMON} (fake-host) after 1 s" in err, err
    assert len(err.strip().splitlines()) == 1, err
    # A request a daemon took is never withdrawn.
    assert ctx.db.one("SELECT count(*) FROM payremind.batch_requests WHERE id = %s", rid) == 1


def test_batch_with_a_running_daemon_prints_its_result(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    # A long poll interval: only the start-up batch and our request run batches during the test.
    conf = write_conf(ctx.tmp, db, gw.url, schedule=dict(poll_interval_s=3600))
    daemon = ctx.spawn(daemon_cmd(conf))
    # Wait for the start-up batch (nothing to do) to end: daemons record each batch in their row.
    started = "SELECT count(*) FROM payremind.instances WHERE stopped_at IS NULL"
    wait_until(lambda: daemon.poll() is not None or db.one(started) == 1, what="daemon heartbeat")
    assert daemon.poll() is None, open(daemon.log_path).read()
    wait_until(lambda: db.one(started + " AND last_batch_at IS NOT NULL") == 1, what="start-up batch")
    for i in range(3):
        db.add_due(f"M-{i}", f"+1514888{i:04d}")
    p = ctl(conf, "batch", "--timeout", "5")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr, open(daemon.log_path).read())
    instance = str(db.one("SELECT id FROM payremind.instances WHERE stopped_at IS NULL"))
    req = db.q("SELECT id, picked_by::text, finished_at IS NOT NULL FROM payremind.batch_requests")
    assert len(req) == 1 and req[0][1:] == (instance, True), req
    line = p.stdout.strip()
    assert line.startswith(f"batch {req[0][0]} done by {instance}: sent=3 failed=0 retried=0 unknown=0 "), line
    assert len(gw.accepted()) == 3
    # status shows that batch as the last one.
    st = json.loads(ctl(conf, "status", "--json").stdout)
    assert st["last_batch"]["sent"] == 3 and st["last_batch"]["daemon"] == instance, st["last_batch"]
    assert [d["id"] for d in st["daemons"]] == [instance], st["daemons"]


def test_optout_cancels_before_the_daemon_sends(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, db, gw.url)
    db.add_due("N-1", "+15145554444")
    db.add_due("N-2", "+15145555555")
    assert ctl(conf, "optout", "add", "+15145554444").returncode == 0
    rows = by_ref(dry_run(conf))
    assert (rows["N-1"]["reason"], rows["N-2"]["decision"]) == ("opted_out", "send"), rows
    p = subprocess.run(daemon_cmd(conf, "--once"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert [r["to"] for r in gw.accepted()] == ["+15145555555"]


def test_report_counts_each_reminder_once_per_stage(ctx):
    db = ctx.db
    conf = builtin_conf(ctx)
    day1, day2 = "2026-11-30 12:00:00-05", "2026-12-01 12:00:00-05"
    rows = [  # ref, msisdn, language, region, step, state, created, dlr, opened, checkout, paid, opted out
        ("F-1", "+15145557001", "fr", "QC", 0, "delivered", day1, "delivered", True, True, True, False),
        ("F-2", "+15145557002", "fr", "QC", 0, "delivered", day1, "delivered", True, False, False, True),
        ("F-3", "+15145557003", "en", "ON", 1, "sent", day2, None, False, False, False, False),
        ("F-4", "+15145557004", "en", "ON", 0, "failed", day2, "undelivered", False, False, False, False),
        ("F-5", "+15145557005", "fr", "QC", 1, "failed", day2, None, False, False, False, False),
        ("F-6", "+15145557006", "fr", "QC", 0, "unknown", day2, None, True, True, False, False),
        ("F-7", "+15145557007", "fr", "QC", 0, "cancelled", day2, None, False, False, False, False),
        ("F-8", "+15145557008", "fr", "QC", 0, "sent", "2026-11-20 12:00:00-05", None, True, True, True, False),
    ]
    for ref, msisdn, lang, region, step, state, created, dlr, opened, checkout, paid, opted in rows:
        did = due(db, ref, msisdn, language=lang, region=region)
        sent_at = created if state not in ("cancelled",) else None
        rid = reminder(db, did, step, state, created_at=created, sent_at=sent_at, dlr_status=dlr)
        db.q("INSERT INTO payremind.payment_tokens (token_hash, reminder_id, expires_at, first_opened_at,"
             " open_count, redeemed_at) VALUES (sha256(%s::bytea), %s, now() + interval '1 day', %s, %s, %s)",
             ref.encode(), rid, created if opened else None, 3 if opened else 0, created if checkout else None)
        if paid:
            assert db.one("SELECT payremind.payment_record(%s, %s, 'paid', 100)", "pay-" + ref, rid) == "recorded"
        if opted:
            db.q("INSERT INTO payremind.opt_outs (msisdn, source, created_at) VALUES (%s, 'keyword', %s::timestamptz"
                 " + interval '1 hour')", msisdn, created)
    # A failed payment counts for nothing.
    f3 = db.one("SELECT id::text FROM payremind.reminders WHERE msisdn = '+15145557003'")
    assert db.one("SELECT payremind.payment_record('pay-x', %s, 'failed', 100)", f3) == "recorded"

    def report(*args):
        p = ctl(conf, "report", "--since", "2026-11-30", "--until", "2026-12-01", "--json", *args)
        assert p.returncode == 0, (args, p.returncode, p.stderr)
        return json.loads(p.stdout)

    stages = ["sent", "delivered", "failed", "unknown", "opened", "checkout", "paid", "opted_out"]
    by_day = report("--by", "day")
    assert [d["day"] for d in by_day] == ["2026-11-30", "2026-12-01"], by_day
    assert [[d[s] for s in stages] for d in by_day] == [[2, 2, 0, 0, 2, 1, 1, 1], [2, 0, 2, 1, 1, 1, 0, 0]], by_day
    by_step = report("--by", "step")
    assert [(d["step"], d["sent"], d["failed"]) for d in by_step] == [(0, 3, 1), (1, 1, 1)], by_step
    by_lang = {d["language"]: d for d in report("--by", "language")}
    assert (by_lang["en"]["sent"], by_lang["fr"]["paid"], by_lang["fr"]["unknown"]) == (2, 1, 1), by_lang
    assert {d["region"] for d in report("--by", "region")} == {"QC", "ON"}
    # The text table ends with the totals; bad arguments are usage errors.
    p = ctl(conf, "report", "--since", "2026-11-30", "--until", "2026-12-01", "--by", "step")
    assert p.returncode == 0 and p.stdout.splitlines()[-1].split() == ["total", "4", "2", "2", "1", "3", "2", "1", "1"], p.stdout
    for bad in (["--by", "month"], ["--since", "30/11/2026"], ["--json", "--html", "x.html"], ["extra"]):
        p = ctl(conf, "report", *bad)
        assert p.returncode == 64 and "usage: payremindctl [-c FILE] report" in p.stderr, (bad, p.returncode, p.stderr)
    # The page: self-contained, the figures in it, no script, no external resource.
    page = os.path.join(ctx.tmp, "report.html")
    p = ctl(conf, "report", "--since", "2026-11-30", "--until", "2026-12-01", "--by", "region", "--html", page)
    assert p.returncode == 0, p.stderr
    with open(page) as f:
        html = f.read()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 2, html[:200]
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "2026-11-30: 2 sent, 1 paid" in html and "2026-12-01: 2 sent, 0 paid" in html, html


TWINS = {"P-twin-1", "P-twin-2"}


def test_dry_run_now_predicts_what_the_daemon_sends(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    # Windows open around the clock (the result does not depend on the hour), QC's 5-day notice delay.
    regions = f"""regions = {{ QC = {{ windows = ( {harness.ALL_DAY} ); holidays = "none"; notice_days = 5; }}; }};"""
    conf = write_conf(ctx.tmp, db, gw.url, regions=regions)
    sent_on = datetime.date.today() - datetime.timedelta(days=30)
    db.add_due("P-send", "+15145556001", notice_sent_on=sent_on)
    db.add_due("P-settled", "+15145556002", settled_at="2026-01-01T00:00:00Z", notice_sent_on=sent_on)
    db.add_due("P-held", "+15145556003", contact_hold="lawyer", notice_sent_on=sent_on)
    db.add_due("P-out", "+15145556004", notice_sent_on=sent_on)
    db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES ('+15145556004', 'gateway')")
    db.add_due("P-notice", "+15145556005", notice_sent_on=datetime.date.today())
    db.add_due("P-no-notice", "+15145556010")
    db.add_due("P-nb", "+15145556006", region="NB", notice_sent_on=sent_on)
    db.add_due("P-twin-1", "+15145556007", notice_sent_on=sent_on)
    db.add_due("P-twin-2", "+15145556007", days_ago=3, notice_sent_on=sent_on)
    db.add_due("P-gap", "+15145556008", notice_sent_on=sent_on)
    contact(db, "+15145556008", datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=3))
    db.add_due("P-later", "+15145556009", days_ago=0, notice_sent_on=sent_on)
    # Of two rows of one number, one goes and the other waits for the gap (which one: claim order).
    predicted = by_ref(dry_run(conf))
    will = {ref for ref, r in predicted.items() if r["decision"] == "send"}
    assert will - TWINS == {"P-send"} and len(will & TWINS) == 1, predicted
    assert {predicted[t]["reason"] for t in TWINS} == {None, "gap"}, predicted
    assert predicted["P-notice"]["reason"] == predicted["P-no-notice"]["reason"] == "notice", predicted
    p = subprocess.run(daemon_cmd(conf, "--once"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    sent = {r[0] for r in db.q("SELECT d.account_ref FROM payremind.reminders r JOIN payremind.due_accounts d"
                               " ON d.id = r.due_account_id WHERE r.state = 'sent' AND d.account_ref LIKE 'P-%%'")}
    assert sent - TWINS == {"P-send"} and len(sent & TWINS) == 1, sent
    assert len(gw.accepted()) == 2
    # Afterwards the sent rows wait for their next step (schedule), the other twin still for the gap.
    after = by_ref(dry_run(conf))
    assert (after["P-send"]["reason"], after["P-send"]["step"]) == ("schedule", 1), after["P-send"]
    assert after[(TWINS - sent).pop()]["reason"] == "gap", after



def test_plan_predicts_first_and_last_send_and_what_slips_in_window_order(ctx):
    # SPEC §11's plan at 0.05 segment/s: QC's window closes 4 minutes after --at (3 usable, with the 60 s
    # guard), ON's in 3 hours, NB's closed 2 hours ago (its rows wait for tomorrow's window). QC goes
    # first and slips what 180 s cannot carry; ON follows; NB is planned in its next window.
    zone, local = harness.zone_at_local(4 * 60, 19 * 60)
    at = local.replace(second=0, microsecond=0)
    hhmm = lambda d: (at + d).strftime("%H:%M")  # noqa: E731
    window = harness.window_until
    regions = (f"regions = {{ QC = {window(hhmm(datetime.timedelta(minutes=4)))}"
               f" ON = {window(hhmm(datetime.timedelta(hours=3)))}"
               f" NB = {window(hhmm(datetime.timedelta(hours=-2)))} }};")
    db = ctx.db
    for i in range(10):
        db.add_due(f"Q-{i}", f"+1514557{1000 + i:04d}", region="QC", time_zone=zone)
    for i in range(5):
        db.add_due(f"O-{i}", f"+1416557{1000 + i:04d}", region="ON", time_zone=zone, language="en")
    for i in range(2):
        db.add_due(f"N-{i}", f"+1506557{1000 + i:04d}", region="NB", time_zone=zone)
    conf = write_conf(ctx.tmp, db, "http://127.0.0.1:9/", regions=regions, gateway=dict(rate_per_second=0.05))
    p = ctl(conf, "plan", "--at", at.isoformat(), "--json")
    assert p.returncode == 0, p.stderr
    assert "0.05 segments per second for 27022" in p.stderr, p.stderr
    plan = json.loads(p.stdout)
    assert [(g["region"], g["time_zone"]) for g in plan] == [("QC", zone), ("ON", zone), ("NB", zone)], plan
    utc = lambda d: d.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    ts = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)  # noqa: E731
    qc, on, nb = plan
    assert set(qc) == {"region", "time_zone", "reminders", "segments", "window_closes", "first_send", "last_send",
                       "slipped"}, qc
    # QC: 10 texts of the same length; one every segments/0.05 s from --at while 180 s remain
    assert qc["reminders"] == 10 and qc["segments"] % 10 == 0, qc
    step = qc["segments"] // 10 / 0.05
    sent = int(180 // step) + 1
    assert 0 < sent < 10, (qc, sent)
    assert qc["window_closes"] == utc(at + datetime.timedelta(minutes=4)), qc
    assert qc["first_send"] == utc(at), qc
    assert ts(qc["last_send"]) == at + datetime.timedelta(seconds=int((sent - 1) * step)), (qc, sent)
    assert qc["slipped"] == 10 - sent, (qc, sent)
    # ON: after QC's last, all 5 before its close
    on_step = on["segments"] // 5 / 0.05
    assert on["reminders"] == 5 and on["slipped"] == 0, on
    assert ts(on["first_send"]) == at + datetime.timedelta(seconds=int(sent * step)), on
    assert ts(on["last_send"]) == at + datetime.timedelta(seconds=int(sent * step + 4 * on_step)), on
    # NB: tomorrow from 00:00, local
    opens = (at + datetime.timedelta(days=1)).replace(hour=0, minute=0)
    assert nb["reminders"] == 2 and nb["slipped"] == 0 and nb["first_send"] == utc(opens), nb
    assert nb["window_closes"] == utc(at + datetime.timedelta(days=1, hours=-2)), nb
    # The table, and a pause said first
    assert ctl(conf, "pause", "--reason", "plan test").returncode == 0
    p = ctl(conf, "plan", "--at", at.isoformat())
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("sending is paused since") and "plan test" in lines[0], lines
    assert any(line.split()[:3] == ["QC", zone, "10"] and line.split()[-1] == str(10 - sent) for line in lines), lines
    assert lines[-1].startswith(f"17 reminders ({qc['segments'] + on['segments'] + nb['segments']} segments)"), lines
    assert ctl(conf, "plan", "--at", "tomorrow").returncode == 64


def test_plan_paces_at_the_rates_of_the_codes_sending(ctx):
    # The day goes at the sum of the rates of the codes that have a live daemon whose breaker is
    # closed, as their heartbeats record them (SPEC §11): two codes at 0.05 send QC's window twice as
    # far as one. A stopped daemon, a silent one and one whose breaker is open or probing do not count.
    zone, local = harness.zone_at_local(4 * 60, 19 * 60)
    at = local.replace(second=0, microsecond=0)
    db = ctx.db
    for i in range(10):
        db.add_due(f"Q-{i}", f"+1514558{1000 + i:04d}", region="QC", time_zone=zone)
    regions = f"regions = {{ QC = {harness.window_until((at + datetime.timedelta(minutes=4)).strftime('%H:%M'))} }};"
    conf = write_conf(ctx.tmp, db, "http://127.0.0.1:9/", regions=regions, gateway=dict(rate_per_second=0.05))

    def qc_sent():
        p = ctl(conf, "plan", "--at", at.isoformat(), "--json")
        assert p.returncode == 0, p.stderr
        qc = json.loads(p.stdout)[0]
        return qc["reminders"] - qc["slipped"], qc["segments"] // qc["reminders"], p.stderr

    alone, segs, notes = qc_sent()
    assert "0.05 segments per second for 27022 (gateway.rate_per_second; no daemon is sending)" in notes, notes
    assert alone == int(180 // (segs / 0.05)) + 1, (alone, segs)
    db.q("""INSERT INTO payremind.instances (id, hostname, pid, version, circuit, short_code, rate_per_second,
            heartbeat_at, stopped_at) VALUES
            (gen_random_uuid(), 'a', 1, 'x', 'closed', '27022', 0.05, now(), NULL),
            (gen_random_uuid(), 'b', 2, 'x', 'closed', '270282', 0.05, now(), NULL),
            (gen_random_uuid(), 'c', 3, 'x', 'open', '270282', 9, now(), NULL),
            (gen_random_uuid(), 'f', 6, 'x', 'half_open', '27022', 9, now(), NULL),
            (gen_random_uuid(), 'd', 4, 'x', 'closed', '270282', 9, now(), now()),
            (gen_random_uuid(), 'e', 5, 'x', 'closed', '270282', 9, now() - interval '1 hour', NULL)""")
    both, _, notes = qc_sent()
    assert "rate: 0.1 segments per second: 27022 at 0.05 (1 daemon), 270282 at 0.05 (1 daemon)" in notes, notes
    assert both == int(180 // (segs / 0.1)) + 1 and both > alone, (both, alone)
    # the second code's breaker opens: back to one code
    db.q("UPDATE payremind.instances SET circuit = 'open' WHERE hostname = 'b'")
    one, _, notes = qc_sent()
    assert one == alone and "0.05 segments per second: 27022 at 0.05 (1 daemon)" in notes, notes


if __name__ == "__main__":
    harness.main(globals())
