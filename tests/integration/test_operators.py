"""Operators steer and look (SPEC §6, §7): pause/resume obeyed by running daemons, /healthz and /metrics
telling the truth during a gateway outage and a pause, history, reminders, resolve, inbound, and the
shipped Prometheus rules and Grafana dashboard."""

import collections
import hashlib
import hmac
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import paysite  # noqa: E402
from harness import ctl, daemon_cmd, wait_until, write_conf  # noqa: E402

KEY = "operators-webhook-key"


def os_user():
    """Who payremindctl records: the OS user, or behind sudo the user who ran it."""
    sudo = os.environ.get("SUDO_USER")
    if os.getuid() == 0 and sudo:
        return f"{sudo} (sudo)"
    return pwd.getpwuid(os.getuid()).pw_name


USER = os_user()


req = harness.http_request


def metrics(port):
    status, _, text = req(port, "GET", "/metrics")
    assert status == 200, status
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def healthz(port):
    status, _, text = req(port, "GET", "/healthz")
    return status, text.splitlines()


def daemon(ctx, conf, **listen):
    """payremindd in normal mode with its listener on a free port; returns (process, port)."""
    port = harness.free_port()
    harness.set_listen(conf, port=port, public_url=f"http://127.0.0.1:{port}/",
                       secret_file=harness.write_secret(ctx.tmp, f"key-{port}", KEY), **listen)
    proc = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: proc.poll() is not None or _up(port), timeout=15, what="the listener")
    assert proc.poll() is None, open(proc.log_path).read()
    return proc, port


def _up(port):
    try:
        return req(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def inbound(port, frm, text, gid, to="27022"):
    body = json.dumps({"from": frm, "to": to, "text": text, "id": gid})
    return req(port, "POST", "/v1/inbound/json", body, {"Content-Type": "application/json", "X-Payremind-Key": KEY})


def test_pause_stops_two_daemons_within_2_s_and_resume_restarts_them(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    numbers = [f"+1514600{i:04d}" for i in range(240)]
    for i, n in enumerate(numbers):
        db.add_due(f"P-{i}", n)
    ports = []
    for name in ("a.conf", "b.conf"):
        conf = write_conf(ctx.tmp, db, gw.url, name=name, gateway=dict(rate_per_second=24.0, max_in_flight=4))
        ports.append(daemon(ctx, conf)[1])
    wait_until(lambda: len(gw.accepted()) >= 20, what="the first SMS")
    p = ctl(conf, "pause", "--reason", "wrong template in fr")
    assert p.returncode == 0 and "sending paused since" in p.stdout, (p.returncode, p.stdout, p.stderr)
    time.sleep(2.0)
    at_2s = len(gw.accepted())
    time.sleep(3.0)
    assert len(gw.accepted()) == at_2s < len(numbers), (at_2s, len(gw.accepted()))
    # Both daemons say so, with who, why and since when; /metrics too.
    for port in ports:
        status, lines = healthz(port)
        assert status == 200 and lines[0] == "ok", (status, lines)
        assert re.fullmatch(rf"sending paused since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ by {re.escape(USER)}: "
                            r"wrong template in fr", lines[1]), lines
        m = metrics(port)
        assert m["payremind_paused"] == 1 and m["payremind_paused_since_seconds"] > time.time() - 60, m
    st = json.loads(ctl(conf, "status", "--json").stdout)
    assert st["paused"]["by"] == USER and st["paused"]["reason"] == "wrong template in fr", st["paused"]
    assert "sending: PAUSED since" in ctl(conf, "status").stdout
    assert "already paused" in ctl(conf, "pause").stdout  # a second pause changes nothing
    # The dry run says why nothing goes: what would be sent is skipped with reason paused (the rows
    # already reminded wait for their next step: schedule).
    rows = json.loads(ctl(conf, "batch", "--dry-run", "--json").stdout)
    assert all(r["decision"] == "skip" for r in rows), rows
    reasons = collections.Counter((r["step"], r["reason"]) for r in rows)
    assert reasons == {(0, "paused"): len(numbers) - at_2s, (1, "schedule"): at_2s}, reasons
    # Keyword replies still go while paused.
    assert inbound(ports[0], "+15146009999", "AIDE", "pause-help-1")[0] == 200
    wait_until(lambda: any(r["to"] == "+15146009999" for r in gw.accepted()), timeout=5, what="the help reply")
    before = len([r for r in gw.accepted() if r["to"] in numbers])
    assert before == at_2s
    # Nothing is left sending or leased while paused: what waited went back to queued untouched.
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sending'") == 0,
               timeout=5, what="no reminder sending")
    p = ctl(conf, "resume", "--reason", "template fixed")
    assert p.returncode == 0 and "sending resumed" in p.stdout, (p.stdout, p.stderr)
    t0 = time.time()
    wait_until(lambda: len([r for r in gw.accepted() if r["to"] in numbers]) > before, timeout=3,
               what="sending to start again within 2 s")
    assert time.time() - t0 < 3
    wait_until(lambda: len([r for r in gw.accepted() if r["to"] in numbers]) == len(numbers), timeout=60,
               what="every reminder")
    sent_to = collections.Counter(r["to"] for r in gw.accepted() if r["to"] in numbers)
    assert set(sent_to.values()) == {1} and len(sent_to) == len(numbers), sent_to.most_common(3)
    assert db.states().get("sent", 0) == len(numbers), db.states()
    for port in ports:
        assert healthz(port) == (200, ["ok"])
        assert metrics(port)["payremind_paused"] == 0
    assert db.q("SELECT action, actor, reason FROM payremind.operator_actions ORDER BY id") == [
        ("pause", USER, "wrong template in fr"), ("resume", USER, "template fixed")]


def test_a_gateway_outage_shows_in_healthz_metrics_and_status(ctx):
    db = ctx.db
    gw = ctx.sandbox("--status", "503")
    for i in range(40):
        db.add_due(f"O-{i}", f"+1514610{i:04d}")
    conf = write_conf(ctx.tmp, db, gw.url, gateway=dict(max_in_flight=8, max_attempts=20))
    proc, port = daemon(ctx, conf)
    wait_until(lambda: "gateway circuit open" in " ".join(healthz(port)[1]), timeout=20, what="circuit open")
    status, lines = healthz(port)
    assert status == 200 and lines[0] == "ok", lines  # the database answers: the service is up
    assert re.fullmatch(r"gateway circuit open since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[1]), lines
    m = metrics(port)
    assert m["payremind_gateway_circuit_open"] == 1 and m["payremind_gateway_circuit_since_seconds"] > 0, m
    assert m['payremind_sends_total{outcome="tempfail"}'] >= 20, m
    # status reads the breaker from the daemon's heartbeat (every 5 s).
    wait_until(lambda: json.loads(ctl(conf, "status", "--json").stdout)["daemons"][0]["circuit"] != "closed",
               timeout=12, what="status to show the breaker")
    assert "GATEWAY CIRCUIT" in ctl(conf, "status").stdout
    # The gateway recovers: the breaker closes and everything goes, once.
    st, _, _ = req(gw.port, "POST", "/_control", json.dumps({"status": 202}), {"Content-Type": "application/json"})
    assert st == 200
    wait_until(lambda: len(gw.accepted()) == 40, timeout=60, what="every reminder after the outage")
    wait_until(lambda: healthz(port) == (200, ["ok"]), timeout=10, what="circuit closed in /healthz")
    assert metrics(port)["payremind_gateway_circuit_open"] == 0
    assert collections.Counter(r["to"] for r in gw.accepted()).most_common(1)[0][1] == 1
    # Retried attempts are kept for history: each reminder's failed tries, with the gateway's answer.
    n, errors = db.q("SELECT count(*), array_agg(DISTINCT error) FROM payremind.attempts")[0]
    assert n >= 20 and all("503" in e for e in errors), (n, errors)
    proc.terminate()
    proc.wait(30)


def test_metrics_count_skips_by_reason_and_the_oldest_queued_reminder(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, db, gw.url)
    assert ctl(conf, "pause", "--reason", "look at the queue first").returncode == 0
    db.add_due("S-1", "+15146200001", contact_hold="dispute")
    db.add_due("S-2", "+15146200002", days_ago=0)  # step 0 is due tomorrow: schedule
    # A queued retry that has been ready for two hours: nobody sent it (no daemon was running).
    did = db.add_due("S-3", "+15146200003")
    db.q("""INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state, attempts,
                                             next_attempt_at, link_token)
            VALUES (%s, 0, '+15146200003', '27022', 'fr', 'queued', 1, now() - interval '2 hours', %s)""",
         did, "q" * 22)
    db.q("UPDATE payremind.due_accounts SET next_step = 0, next_at = now() - interval '2 hours' WHERE id = %s", did)
    port = harness.free_port()
    harness.set_listen(conf, port=port)
    proc = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: _up(port), timeout=15, what="the listener")
    time.sleep(1.5)  # a start-up batch and a second's poll: paused, they send nothing
    m = metrics(port)
    assert 7000 <= m["payremind_oldest_queued_seconds"] <= 7400 and m["payremind_paused"] == 1, m
    assert gw.accepted() == []
    assert ctl(conf, "resume").returncode == 0
    wait_until(lambda: metrics(port)['payremind_skips_total{reason="held"}'] >= 1, what="held skip")
    m = metrics(port)
    assert m['payremind_skips_total{reason="schedule"}'] >= 1, m
    assert {f'payremind_skips_total{{reason="{r}"}}' for r in ("window", "holiday", "notice", "cap", "gap",
                                                               "paused", "unknown_region")} <= set(m), m
    wait_until(lambda: metrics(port)["payremind_oldest_queued_seconds"] == 0, what="the queued retry sent")
    assert [r["to"] for r in gw.accepted()] == ["+15146200003"]
    proc.terminate()
    proc.wait(30)


def test_history_of_an_account_shows_every_kind_of_event_in_time_order(ctx):
    db = ctx.db
    number, other = "+15146300001", "+15146300002"
    checkout = paysite.Checkout()
    ctx.cleanups.append(checkout.stop)
    port = harness.free_port()
    key_file = harness.write_secret(ctx.tmp, "dlr-key", KEY)
    # The first attempt meets a 503 (an attempt that did not end the reminder), the retry goes; the gateway
    # reports delivery to our listener.
    gw = ctx.sandbox("--rule", f"{number}=503*1", "--dlr-url", f"http://127.0.0.1:{port}/v1/dlr/json",
                     "--dlr-key-file", key_file)
    secret = harness.write_secret(ctx.tmp, "checkout-secret", paysite.SECRET)
    conf = write_conf(ctx.tmp, db, gw.url, extra=f'checkout = {{ url = "{checkout.url}"; secret_file = "{secret}"; }};')
    harness.set_listen(conf, port=port, public_url=f"http://127.0.0.1:{port}/", secret_file=key_file)
    did = db.add_due("H-1", number)
    db.add_due("H-2", other)
    proc = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'delivered'") == 2,
               timeout=30, what="both reminders delivered")
    token = paysite.LINK.search([r for r in gw.accepted() if r["to"] == number][0]["text"]).group(1)
    rid = db.one("SELECT id::text FROM payremind.reminders WHERE due_account_id = %s", did)
    assert req(port, "GET", f"/p/{token}")[0] == 200  # link opened
    assert req(port, "POST", f"/p/{token}", "", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 303
    body = json.dumps({"id": "pay-h1", "reference": rid, "status": "paid", "amount_cents": 12345})
    sig = hmac.new(paysite.SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    assert req(port, "POST", "/v1/payments/json", body,
                {"Content-Type": "application/json", "X-Payremind-Signature": sig})[0] == 200
    assert inbound(port, number, "Je paie vendredi, merci\x1b[2J", "h-in-1")[0] == 200
    assert inbound(port, number, "AIDE", "h-in-2")[0] == 200
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.replies WHERE state IN ('sent', 'delivered')") == 1,
               what="the help reply sent")
    assert ctl(conf, "optout", "add", number, "--reason", "asked by phone").returncode == 0
    assert ctl(conf, "optout", "remove", number, "--reason", "called back: wants SMS").returncode == 0
    db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE id = %s", did)
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.payment_tokens WHERE first_opened_at IS NOT NULL") == 1,
               what="the opening flushed")
    p = ctl(conf, "history", "--account", "H-1", "--json")
    assert p.returncode == 0, p.stderr
    h = json.loads(p.stdout)
    assert h["account_ref"] == "H-1" and [r["account_ref"] for r in h["due_rows"]] == ["H-1"], h["due_rows"]
    kinds = [e["kind"] for e in h["events"]]
    assert set(kinds) == {"due_row", "reminder", "attempt", "dlr", "inbound", "reply", "opt_out", "opt_in",
                          "link_opened", "checkout", "payment", "operator"}, collections.Counter(kinds)
    ats = [e["at"] for e in h["events"]]
    assert ats == sorted(ats) and all(a.endswith("+00:00") for a in ats), ats
    attempts = [e for e in h["events"] if e["kind"] == "attempt"]
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "retry"), (2, "sent")], attempts
    assert "503" in attempts[0]["error"]
    ops = [(e["action"], e["actor"], e["reason"]) for e in h["events"] if e["kind"] == "operator"]
    assert ops == [("opt_out", USER, "asked by phone"), ("opt_in", USER, "called back: wants SMS")], ops
    assert [e["what"] for e in h["events"] if e["kind"] == "due_row"] == ["created", "settled"]
    # Nothing of the other account.
    assert other not in p.stdout and "H-2" not in p.stdout
    # The human form: one line per event, a phone's text with its escape sequence made harmless.
    p = ctl(conf, "history", "--account", "H-1")
    assert p.returncode == 0 and "\x1b" not in p.stdout and "\\x1b[2J" in p.stdout, p.stdout
    retry_lines = [line for line in p.stdout.splitlines() if " attempt " in line and "outcome=retry" in line]
    assert len(retry_lines) == 1 and "attempt=1" in retry_lines[0] and "http 503" in retry_lines[0], p.stdout
    # By number: the same person's events.
    p = ctl(conf, "history", "--msisdn", number, "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["msisdn"] == number
    assert {e["kind"] for e in json.loads(p.stdout)["events"]} >= {"inbound", "reply", "opt_out", "payment"}
    # Unknown account or number: 65.
    assert ctl(conf, "history", "--account", "NOPE").returncode == 65
    p = ctl(conf, "history", "--msisdn", "+15146309999")
    assert p.returncode == 65 and p.stdout == "" and "nothing is recorded" in p.stderr, p
    # inbound lists the text that was no keyword, with the number's account, made harmless.
    p = ctl(conf, "inbound")
    assert p.returncode == 0 and "Je paie vendredi, merci\\x1b[2J" in p.stdout and "H-1" in p.stdout, p.stdout
    assert "AIDE" not in p.stdout
    rows = json.loads(ctl(conf, "inbound", "--json").stdout)
    assert [(r["msisdn"], r["text"], r["account_refs"]) for r in rows] == [
        (number, "Je paie vendredi, merci\x1b[2J", ["H-1"])], rows
    assert json.loads(ctl(conf, "inbound", "--json", "--since", "2099-01-01").stdout) == []
    proc.terminate()
    proc.wait(30)


def unknown_reminder(db, ref, msisdn):
    """A due row whose step 0 became unknown, as a kannel daemon leaves it after a timeout."""
    did = db.add_due(ref, msisdn)
    rid = db.one("""INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state,
                        attempts, sent_at, last_error)
                    VALUES (%s, 0, %s, '27022', 'fr', 'unknown', 1, now(), 'timeout after the request was sent')
                    RETURNING id::text""", did, msisdn)
    db.q("""INSERT INTO payremind.payment_tokens (token_hash, reminder_id, expires_at)
            VALUES (sha256(convert_to(%s, 'UTF8')), %s, now() + interval '7 days')""", "t" * 21 + msisdn[-1], rid)
    db.q("UPDATE payremind.due_accounts SET next_step = 1, next_at = now() + interval '6 days' WHERE id = %s", did)
    return did, rid


def test_reminders_lists_and_resolve_decides_only_unknown_ones(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, db, gw.url)
    _, sent_one = unknown_reminder(db, "R-1", "+15146400001")
    _, failed_one = unknown_reminder(db, "R-2", "+15146400002")
    did3, retry_one = unknown_reminder(db, "R-3", "+15146400003")
    p = ctl(conf, "reminders", "--state", "unknown", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert sorted(r["id"] for r in rows) == sorted([sent_one, failed_one, retry_one]), rows
    assert {"id", "account_ref", "step", "state", "attempts", "last_error", "created_at"} <= set(rows[0]), rows[0]
    assert ctl(conf, "reminders", "--state", "sent", "--json").stdout.strip() == "[]"
    assert "3 reminders, newest first" in ctl(conf, "reminders", "--state", "failed,unknown").stdout
    assert len(json.loads(ctl(conf, "reminders", "--limit", "2", "--json").stdout)) == 2
    assert json.loads(ctl(conf, "reminders", "--since", "2099-01-01", "--json").stdout) == []
    # A date is local midnight of the session's time zone, with and without --json (UTC output).
    env = dict(os.environ, PGTZ="Pacific/Kiritimati")  # UTC+14: its today began before UTC's
    today = db.one("SELECT (now() AT TIME ZONE 'Pacific/Kiritimati')::date::text")
    cmd = [os.path.join(harness.BIN, "payremindctl"), "-c", conf, "reminders", "--since", today]
    text = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    rows = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env).stdout)
    assert len(rows) == 3 and all(r["id"] in text for r in rows), (text, rows)
    # sent and failed close it; the decision is recorded with who and why.
    p = ctl(conf, "resolve", sent_one, "--as", "sent", "--reason", "Kannel's log shows it delivered")
    assert p.returncode == 0, p.stderr
    assert ctl(conf, "resolve", failed_one, "--as", "failed").returncode == 0
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", sent_one) == "sent"
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", failed_one) == "failed"
    assert db.q("SELECT action, actor, reminder_id::text, detail, reason FROM payremind.operator_actions ORDER BY id") == [
        ("resolve", USER, sent_one, "sent", "Kannel's log shows it delivered"),
        ("resolve", USER, failed_one, "failed", None)]
    # Anything but unknown is refused with 65 and left alone; so is an id that does not exist.
    for rid in (sent_one, failed_one, "00000000-0000-4000-8000-000000000000"):
        p = ctl(conf, "resolve", rid, "--as", "retry")
        assert p.returncode == 65, (rid, p.returncode, p.stderr)
    assert "is sent, not unknown" in ctl(conf, "resolve", sent_one, "--as", "failed").stderr
    assert ctl(conf, "resolve", "not-a-uuid", "--as", "sent").returncode == 65
    assert db.one("SELECT count(*) FROM payremind.operator_actions") == 2
    # retry: queued again with a new link, and sent once by the next batch.
    p = ctl(conf, "resolve", retry_one, "--as", "retry", "--reason", "gateway says never received")
    assert p.returncode == 0, p.stderr
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", retry_one) == "queued"
    assert db.one("SELECT next_step FROM payremind.due_accounts WHERE id = %s", did3) == 0
    harness.run_once(conf)
    assert [r["to"] for r in gw.accepted()] == ["+15146400003"]
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", retry_one) == "sent"
    link = paysite.LINK.search(gw.accepted()[0]["text"]).group(1)
    assert db.one("SELECT count(*) FROM payremind.payment_tokens WHERE reminder_id = %s AND token_hash = "
                  "sha256(convert_to(%s, 'UTF8'))", retry_one, link) == 1
    harness.run_once(conf)
    assert len(gw.accepted()) == 1  # once
    # The history keeps the attempt that ended unknown; the report counts the retried reminder once
    # although it has two links.
    h = json.loads(ctl(conf, "history", "--account", "R-3", "--json").stdout)
    attempts = [(e["attempt"], e["outcome"]) for e in h["events"] if e["kind"] == "attempt"]
    assert attempts == [(1, "unknown"), (2, "sent")], h["events"]
    (group,) = json.loads(ctl(conf, "report", "--by", "step", "--json").stdout)
    assert (group["sent"], group["failed"], group["unknown"]) == (2, 1, 0), group
    # Its first link (the phone may have it) stays valid beside the new one until it expires: the
    # reminder holds the new link, the first is among its earlier ones, and each is spent once.
    first = "t" * 21 + "3"
    assert db.one("SELECT token_hash = sha256(convert_to(%s, 'UTF8')) FROM payremind.reminders WHERE id = %s",
                  link, retry_one) is True
    assert db.one("SELECT count(*) FROM payremind.earlier_tokens WHERE reminder_id = %s AND token_hash = "
                  "sha256(convert_to(%s, 'UTF8'))", retry_one, first) == 1
    for tok in (first, link):
        assert db.one("SELECT account_ref FROM payremind.token_peek(%s)", tok) == "R-3", tok
        assert db.one("SELECT account_ref FROM payremind.token_redeem(%s)", tok) == "R-3", tok
        assert db.one("SELECT count(*) FROM payremind.token_redeem(%s)", tok) == 0, tok
    assert db.one("SELECT count(*) FROM payremind.payment_tokens WHERE reminder_id = %s AND redeemed_at IS NOT NULL",
                  retry_one) == 2


def docs_role(db, name):
    """Run docs/billing.md's grant block for role name as written, the role renamed for this test; its
    new name."""
    with open(os.path.join(harness.SRC, "docs", "billing.md")) as f:
        doc = f.read()
    block = doc[doc.index(f"CREATE ROLE {name} LOGIN;"):]
    role = f"{name}_{os.getpid()}"
    db.q(re.sub(rf"\b{name}\b", role, block[:block.index("```")]))
    return role


def test_the_grants_in_docs_billing_md_let_billing_and_the_portal_do_their_part_and_no_more(ctx):
    """docs/billing.md's grant blocks, run as written. Billing inserts, settles and deletes its rows (the
    triggers cancel and delete reminders and their links with its privileges), reads what the page
    lists, and cannot read a link's hash or plaintext. The portal peeks at and redeems a link, once,
    whether it is a reminder's own or an earlier one."""
    db = ctx.db
    role, portal = docs_role(db, "billing"), docs_role(db, "portal")
    try:
        c = psycopg2.connect(host=db.env["PGHOST"], port=db.env["PGPORT"], user=portal, dbname=db.name)
        c.autocommit = True
        did = db.add_due("P-1", "+15145557003")
        rid = db.one("""INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state,
                            attempts, token_hash, token_expires_at)
                        VALUES (%s, 0, '+15145557003', '27022', 'fr', 'sent', 1, sha256(convert_to('c', 'UTF8')),
                                now() + interval '1 day') RETURNING id::text""", did)
        db.q("INSERT INTO payremind.earlier_tokens (token_hash, reminder_id, expires_at)"
             " VALUES (sha256(convert_to('d', 'UTF8')), %s, now() + interval '1 day')", rid)
        with c.cursor() as cur:
            for tok in ("c", "d"):
                cur.execute("SELECT account_ref FROM payremind.token_peek(%s)", (tok,))
                assert cur.fetchall() == [("P-1",)], tok
                cur.execute("SELECT account_ref FROM payremind.token_redeem(%s)", (tok,))
                assert cur.fetchall() == [("P-1",)], tok
                cur.execute("SELECT count(*) FROM payremind.token_redeem(%s)", (tok,))
                assert cur.fetchone()[0] == 0, tok
        c.close()
        db.q("DELETE FROM payremind.due_accounts WHERE id = %s", did)
        did = db.add_due("G-1", "+15145557001")
        rid = db.one("""INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state,
                            attempts, link_token, token_hash, token_expires_at)
                        VALUES (%s, 0, '+15145557001', '27022', 'fr', 'queued', 1, %s, sha256(convert_to(%s, 'UTF8')),
                                now() + interval '1 day') RETURNING id::text""", did, "a" * 22, "a" * 22)
        db.q("INSERT INTO payremind.earlier_tokens (token_hash, reminder_id, expires_at)"
             " VALUES (sha256('b'::bytea), %s, now() + interval '1 day')", rid)
        c = psycopg2.connect(host=db.env["PGHOST"], port=db.env["PGPORT"], user=role, dbname=db.name)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)"
                        " VALUES ('G-2', '+15145557002', 100, current_date)")
            cur.execute("SELECT reminder_id::text, created_at, expires_at, redeemed_at, first_opened_at, open_count"
                        " FROM payremind.payment_tokens")
            assert sorted(r[0] for r in cur.fetchall()) == [rid, rid]
            for sql in ("SELECT token_hash FROM payremind.payment_tokens",
                        "SELECT link_token FROM payremind.reminders", "SELECT token_hash FROM payremind.reminders"):
                try:
                    cur.execute(sql)
                except psycopg2.errors.InsufficientPrivilege:
                    continue
                raise AssertionError(f"{sql}: allowed")
            cur.execute("UPDATE payremind.due_accounts SET settled_at = now() WHERE id = %s", (did,))
            assert db.q("SELECT state, link_token FROM payremind.reminders") == [("cancelled", None)]
            cur.execute("DELETE FROM payremind.due_accounts WHERE id = %s", (did,))
        c.close()
        assert db.one("SELECT count(*) FROM payremind.reminders") == 0
        assert db.one("SELECT count(*) FROM payremind.earlier_tokens") == 0
    finally:
        for r in (role, portal):
            db.q(f"DROP OWNED BY {r}")
            db.q(f"DROP ROLE {r}")


def test_migrating_moves_each_reminders_newest_link_onto_it_and_keeps_every_link_valid(ctx):
    """Migration 016 on a database with links: each reminder's newest link onto the reminder, its
    earlier ones (and one whose reminder is gone) in earlier_tokens; every link opens, counts its
    openings and is spent once, as before; payment_tokens shows the same rows with the same columns, and
    an operator's INSERT, UPDATE and DELETE through it reach the table that holds the link."""
    with ctx.db.empty("old") as conninfo:
        conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", name="old.conf",
                          database={"conninfo": conninfo})
        c = psycopg2.connect(conninfo)
        c.autocommit = True
        cur = c.cursor()
        cur.execute("CREATE SCHEMA payremind; CREATE TABLE payremind.schema_migrations (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        sql = os.path.join(harness.SRC, "sql")
        for f in sorted(os.listdir(sql)):
            if int(f[:3]) < 16:
                with open(os.path.join(sql, f)) as fh:
                    cur.execute(fh.read())
                cur.execute("INSERT INTO payremind.schema_migrations (version, name) VALUES (%s, %s)",
                            (int(f[:3]), f[:-4]))
        cur.execute("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date)
                       VALUES ('M-1', '+15146700001', 1000, current_date - 3) RETURNING id""")
        did = cur.fetchone()[0]
        cur.execute("""INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state,
                           attempts, sent_at, created_at)
                       VALUES (%s, 0, '+15146700001', '27022', 'fr', 'sent', 2, now(), now() - interval '1 day')
                       RETURNING id::text""", (did,))
        rid = cur.fetchone()[0]
        links = {"first": "f" * 22, "second": "s" * 22, "orphan": "o" * 22}
        cur.execute("""INSERT INTO payremind.payment_tokens (token_hash, reminder_id, created_at, expires_at,
                           first_opened_at, open_count)
                       VALUES (sha256(convert_to(%s, 'UTF8')), %s, now() - interval '1 day', now() + interval '6 days',
                               now() - interval '20 hours', 3),
                              (sha256(convert_to(%s, 'UTF8')), %s, now() - interval '1 hour', now() + interval '7 days',
                               NULL, 0),
                              (sha256(convert_to(%s, 'UTF8')), gen_random_uuid(), now(), now() + interval '7 days',
                               NULL, 0)""", (links["first"], rid, links["second"], rid, links["orphan"]))
        cols = "token_hash, reminder_id::text, created_at, expires_at, redeemed_at, first_opened_at, open_count"
        cur.execute(f"SELECT {cols} FROM payremind.payment_tokens ORDER BY created_at")
        before = cur.fetchall()
        p = ctl(conf, "migrate")
        assert p.returncode == 0, p.stderr
        cur.execute(f"SELECT {cols} FROM payremind.payment_tokens ORDER BY created_at")
        assert cur.fetchall() == before
        cur.execute("SELECT token_hash = sha256(convert_to(%s, 'UTF8')), token_created_at IS NOT NULL"
                    " FROM payremind.reminders WHERE id = %s", (links["second"], rid))
        assert cur.fetchone() == (True, True)
        cur.execute("SELECT count(*) FROM payremind.earlier_tokens")
        assert cur.fetchone()[0] == 2  # the first link and the orphan
        cur.execute("SELECT payremind.link_opened(ARRAY[encode(sha256(convert_to(%s, 'UTF8')), 'hex'),"
                    " encode(sha256(convert_to(%s, 'UTF8')), 'hex')], ARRAY[1.0, 2.0]::float8[])",
                    (links["first"], links["second"]))
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT open_count FROM payremind.payment_tokens ORDER BY created_at")
        assert [r[0] for r in cur.fetchall()] == [4, 1, 0]
        for name in ("first", "second"):
            cur.execute("SELECT view FROM payremind.link_checkout(%s)", (links[name],))
            assert cur.fetchone()[0] == "checkout", name
            cur.execute("SELECT view FROM payremind.link_checkout(%s)", (links[name],))
            assert cur.fetchone()[0] == "spent", name
        cur.execute("SELECT count(*) FROM payremind.token_peek(%s)", (links["orphan"],))
        assert cur.fetchone()[0] == 0  # no reminder: never valid, as before
        # Writes through the view reach the table that holds the link.
        cur.execute("UPDATE payremind.payment_tokens SET expires_at = now() - interval '1 s'"
                    " WHERE token_hash = sha256(convert_to(%s, 'UTF8'))", (links["orphan"],))
        assert cur.rowcount == 1
        cur.execute("SELECT expires_at < now() FROM payremind.earlier_tokens WHERE token_hash = "
                    "sha256(convert_to(%s, 'UTF8'))", (links["orphan"],))
        assert cur.fetchone() == (True,)
        cur.execute("INSERT INTO payremind.payment_tokens (token_hash, reminder_id, expires_at)"
                    " VALUES (sha256(convert_to(%s, 'UTF8')), %s, now() + interval '7 days')", ("t" * 22, rid))
        cur.execute("SELECT token_hash = sha256(convert_to(%s, 'UTF8')) FROM payremind.reminders WHERE id = %s",
                    ("t" * 22, rid))
        assert cur.fetchone() == (True,)  # the new link on the reminder, the one it had among the earlier
        cur.execute("SELECT count(*) FROM payremind.earlier_tokens WHERE reminder_id = %s", (rid,))
        assert cur.fetchone()[0] == 2
        cur.execute("DELETE FROM payremind.payment_tokens WHERE reminder_id = %s", (rid,))
        assert cur.rowcount == 3
        cur.execute("SELECT token_hash IS NULL, token_open_count FROM payremind.reminders WHERE id = %s", (rid,))
        assert cur.fetchone() == (True, 0)
        cur.execute("SELECT count(*) FROM payremind.payment_tokens")
        assert cur.fetchone()[0] == 1  # the orphan
        c.close()


def test_batch_for_one_account_runs_now_and_says_what_became_of_it(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, db, gw.url, schedule=dict(poll_interval_s=3600))
    proc = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: db.one("SELECT count(*) FROM payremind.instances WHERE last_batch_at IS NOT NULL") == 1,
               what="the start-up batch")
    did = db.add_due("B-1", "+15146500001")
    db.add_due("B-2", "+15146500002")
    # Billing's insert is due now, but the account's row is looked at only at its next look, here later.
    db.q("UPDATE payremind.due_accounts SET next_at = now() + interval '1 hour'")
    p = ctl(conf, "batch", "--account", "B-1", "--timeout", "10")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert re.search(rf"account B-1, due row {did} \(due \S+\): reminder step 0 sent", p.stdout), p.stdout
    assert [r["to"] for r in gw.accepted()] == ["+15146500001"]  # B-2 waits for its own time
    assert db.q("SELECT action, account_ref, actor FROM payremind.operator_actions") == [("batch", "B-1", USER)]
    p = ctl(conf, "batch", "--account", "NOPE")
    assert p.returncode == 65 and "no due row has account_ref NOPE" in p.stderr, (p.returncode, p.stderr)
    assert ctl(conf, "batch", "--dry-run", "--account", "NOPE").returncode == 65
    proc.terminate()
    proc.wait(30)


def test_dry_run_json_gives_the_next_possible_time(ctx):
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", regions="")  # built-in legal windows
    ctx.db.q("""INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date, notice_sent_on)
                VALUES ('D-1', '+15146600001', 5000, '2026-11-20', '2026-11-01')""")
    # Sunday 2026-11-29 noon in Montréal: Québec allows no contact on Sundays; Monday 08:00 is next.
    p = ctl(conf, "batch", "--dry-run", "--json", "--at", "2026-11-29T12:00:00-05:00")
    assert p.returncode == 0, p.stderr
    (row,) = json.loads(p.stdout)
    assert (row["reason"], row["next_at"]) == ("window", "2026-11-30T13:00:00Z"), row
    (row,) = json.loads(ctl(conf, "batch", "--dry-run", "--json", "--at", "2026-11-30T09:00:00-05:00").stdout)
    assert (row["decision"], row["next_at"]) == ("send", None), row


def test_the_daemon_logs_one_start_up_line_at_info(ctx):
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms")
    p = harness.run_once(conf)
    info = [line for line in p.stderr.splitlines() if line.startswith("<6>") and "batch: sent=" not in line
            and "stopped: " not in line]
    assert len(info) == 1 and "starting" in info[0] and "dialect json, sender 27022" in info[0], p.stderr
    assert "config:" not in p.stderr and "templates." not in p.stderr, p.stderr
    env = dict(os.environ, PAYREMIND_DEBUG="1")
    p = subprocess.run(daemon_cmd(conf, "--once"), capture_output=True, text=True, timeout=60, env=env)
    assert "config: " in p.stderr and "templates.fr: " in p.stderr, p.stderr


def test_every_flag_of_every_command_is_described_by_its_help(ctx):
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms")
    commands = ("migrate", "batch", "status", "optout", "pause", "resume", "history", "reminders", "resolve",
                "inbound", "report")
    usage = ctl(conf, "--help").stdout
    for cmd in commands:
        assert re.search(rf"(\] |\| ){cmd}\b", usage), (cmd, usage)
    for cmd in commands:
        p = ctl(conf, cmd, "--help")
        assert p.returncode == 0, (cmd, p.stderr)
        usage, _, body = p.stdout.partition("\n")
        for flag in set(re.findall(r"--[a-z-]+", usage)):
            assert re.search(rf"^\s+{flag}\b", body, re.M), f"{cmd} --help does not describe {flag}:\n{p.stdout}"
    p = subprocess.run(daemon_cmd(conf, "--help"), capture_output=True, text=True)
    usage, _, body = p.stdout.partition("\n")
    for flag in re.findall(r"--[a-z-]+", usage):
        assert re.search(rf"^\s+(-\w, )?{flag}\b", body, re.M), f"payremindd --help does not describe {flag}"


def test_prometheus_rules_pass_promtool_and_name_only_real_metrics(ctx):
    rules = os.path.join(harness.SRC, "deploy", "prometheus", "payremind-rules.yml")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/deps.sh installs Debian's prometheus package"
    p = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 4 rules found" in p.stdout, p.stdout
    exposed = exposed_metrics(ctx)
    with open(rules) as f:
        text = f.read()
    used = set(re.findall(r"\bpayremind_[a-z_]+", text))
    assert used and used <= exposed, used - exposed
    for alert in ("PayremindGatewayCircuitOpen", "PayremindUnknownReminders", "PayremindQueueStuck",
                  "PayremindPausedTooLong"):
        assert f"alert: {alert}" in text, alert


def exposed_metrics(ctx):
    """The metric names (histogram families included) a running daemon's /metrics exposes."""
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", name="metrics.conf")
    port = harness.free_port()
    harness.set_listen(conf, port=port)
    proc = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: _up(port), timeout=15, what="the listener")
    _, _, text = req(port, "GET", "/metrics")
    proc.terminate()
    proc.wait(30)
    names = set(re.findall(r"^# TYPE (payremind_[a-z_]+)", text, re.M))
    names |= {n + s for n in names for s in ("_bucket", "_sum", "_count")}
    return names


def test_grafana_dashboard_parses_and_names_only_real_metrics(ctx):
    with open(os.path.join(harness.SRC, "deploy", "grafana", "payremind-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 8, exprs
    used = set(re.findall(r"\bpayremind_[a-z_]+", " ".join(exprs)))
    exposed = exposed_metrics(ctx)
    assert used <= exposed, used - exposed
    for needed in ("payremind_gateway_circuit_open", "payremind_paused", "payremind_oldest_queued_seconds",
                   "payremind_skips_total", "payremind_reminders", "payremind_sends_total"):
        assert needed in used, needed


if __name__ == "__main__":
    harness.main(globals())
