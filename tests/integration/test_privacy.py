"""Privacy (Québec Law 25): what the logs never hold, and what retention purges."""

import json
import os
import re
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import daemon_cmd, run_once, wait_until, write_conf  # noqa: E402

LINK_RE = re.compile(r"https://pay\.aro\.ca/p/([A-Za-z0-9_-]{22})")
NUMBER_RE = re.compile(r"\+1\d{10}")


def test_logs_hold_no_full_number_token_or_text(ctx):
    gw = ctx.sandbox("--rule", "+15145553003=503", "--rule", "+15145553004=400")
    db = ctx.db
    for i in range(20):
        db.add_due(f"V-{i}", f"+151455530{i:02d}", language="fr" if i % 2 else "en")
    conf = write_conf(ctx.tmp, db, gw.url)
    p = run_once(conf)
    log = p.stderr
    tokens = [LINK_RE.search(r["text"]).group(1) for r in gw.accepted()]
    assert len(tokens) == 18
    assert "reminder=" in log and "to=+1514***30" in log  # attempts are logged, masked
    assert NUMBER_RE.findall(log) == [], NUMBER_RE.findall(log)
    for t in tokens:
        assert t not in log
    # No message text either (the templates appear once, in the start-up dump of the configuration).
    body_lines = [line for line in log.splitlines() if "config: templates." not in line]
    assert not any("paiement" in line or "payment is due" in line for line in body_lines)


def test_listener_logs_hold_no_full_number_or_text(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    secret = harness.write_secret(ctx.tmp, "listen_secret", "webhook-key")
    conf = write_conf(ctx.tmp, db, gw.url)
    port = harness.free_port()
    harness.set_listen(conf, port=port, secret_file=secret, public_url=f"http://127.0.0.1:{port}")
    p = ctx.spawn(daemon_cmd(conf))
    wait_until(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, what="listener up")
    body = b'{"from":"+15145554444","to":"27022","text":"ARRET svp mon secret","id":"in-1"}'
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/inbound/json", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Payremind-Key": "webhook-key"})
    assert urllib.request.urlopen(req).status == 200
    body = b'{"from":"+15145554444","to":"27022","text":"ARRET","id":"in-2"}'
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/inbound/json", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Payremind-Key": "webhook-key"})
    assert urllib.request.urlopen(req).status == 200
    wait_until(lambda: len(gw.accepted()) == 1, what="the French confirmation")
    # Numbers a client put where no number belongs: in `to` (refused loudly), as the gateway id, as a
    # delivery report's reference or code (json and kannel), and in a query parameter's name.
    misplaced = [
        ("POST", "/v1/inbound/json", {"from": "+15145554444", "to": "+15145550109", "text": "x", "id": "in-3"}, 400),
        ("POST", "/v1/inbound/json", {"from": "+15145554444", "to": "27022", "text": "x", "id": "+15145550108"}, 200),
        ("POST", "/v1/inbound/json", {"from": "+15145554444", "to": "15145550107", "text": "x", "id": "in-4"}, 400),
        ("POST", "/v1/dlr/json", {"id": "g-1", "reference": "+15145550100", "status": "delivered"}, 404),
        ("POST", "/v1/dlr/json", {"id": "g-2", "reference": "+15145550106", "status": "failed",
                                  "code": "15145550105"}, 404),
        ("GET", "/v1/dlr/kannel?key=webhook-key&ref=%2B15145550104&status=1", None, 404),
        ("GET", "/v1/dlr/kannel?key=webhook-key&ref=5145550103&status=2", None, 404),
        ("GET", "/v1/inbound/kannel?key=webhook-key&from=15145554444&to=%2B15145550102&text=x&id=k-1", None, 400),
        ("GET", "/v1/inbound/kannel?key=webhook-key&15145550111=a&15145550111=b", None, 400),
    ]
    for method, path, obj, want in misplaced:
        url = f"http://127.0.0.1:{port}{path}"
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", "X-Payremind-Key": "webhook-key"})
        try:
            status = urllib.request.urlopen(req, timeout=10).status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status == want, (method, path, obj, status, want)
    p.terminate()
    p.wait(30)
    with open(p.log_path) as f:
        log = f.read()
    assert NUMBER_RE.findall(log) == [], NUMBER_RE.findall(log)
    for n in ("5145550109", "5145550108", "5145550107", "5145550100", "5145550106", "5145550105", "5145550104",
              "5145550103", "5145550102", "5145550111"):
        assert n[3:] not in log, f"{n} in the listener's log"  # no 7 digits of it, with or without +1
    assert "REFUSED inbound" in log and "+1514***0109" in log and "dlr gateway=json ref=+1514***0100" in log, log
    assert "mon secret" not in log and "webhook-key" not in log
    assert gw.accepted()[0]["to"] == "+15145554444"


def _get(url):
    try:
        return urllib.request.urlopen(url, timeout=2).status
    except Exception:
        return None


def test_retention_purges_old_personal_data_and_keeps_the_rest(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    old = db.add_due("W-old", "+15145556001")
    new = db.add_due("W-new", "+15145556002")
    conf = write_conf(ctx.tmp, db, gw.url, extra="retention = { days = 30; };")
    run_once(conf)
    # Make one row's history old: settled 40 days ago, its token redeemed 40 days ago.
    db.q("UPDATE payremind.due_accounts SET settled_at = now() - interval '40 days' WHERE id = %s", old)
    db.q("UPDATE payremind.payment_tokens SET redeemed_at = now() - interval '40 days' WHERE reminder_id IN "
         "(SELECT id FROM payremind.reminders WHERE due_account_id = %s)", old)
    db.q("""INSERT INTO payremind.inbound_messages (gateway, gateway_id, msisdn, short_code, text, action, received_at)
            VALUES ('json', 'old', '+15145556001', '27022', 'vieux texte', 'none', now() - interval '40 days'),
                   ('json', 'new', '+15145556002', '27022', 'texte recent', 'none', now() - interval '2 days')""")
    db.q("""INSERT INTO payremind.replies (msisdn, short_code, kind, language, text, state, created_at)
            VALUES ('+15145556001', '27022', 'help', 'fr', 'aide', 'sent', now() - interval '40 days'),
                   ('+15145556002', '27022', 'help', 'fr', 'aide', 'sent', now() - interval '1 day')""")
    # The portal's results: one from 40 days ago, one recent.
    for pid, rid_of, age in (("pay-old", old, "40 days"), ("pay-new", new, "2 days")):
        rid = db.one("SELECT id::text FROM payremind.reminders WHERE due_account_id = %s", rid_of)
        assert db.one("SELECT payremind.payment_record(%s, %s, 'failed', 100)", pid, rid) == "recorded"
        db.q(f"UPDATE payremind.payments SET received_at = now() - interval '{age}' WHERE id = %s", pid)
    p = run_once(conf)
    assert "retention: purged" in p.stderr, p.stderr
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE due_account_id = %s", old) == 0
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE due_account_id = %s", new) == 1
    assert db.one("SELECT count(*) FROM payremind.payment_tokens") == 1
    assert [r[0] for r in db.q("SELECT gateway_id FROM payremind.inbound_messages")] == ["new"]
    assert [r[0] for r in db.q("SELECT msisdn FROM payremind.replies")] == ["+15145556002"]
    assert [r[0] for r in db.q("SELECT id FROM payremind.payments")] == ["pay-new"]
    # Billing's own rows are billing's to keep or delete.
    assert db.one("SELECT count(*) FROM payremind.due_accounts") == 2


def test_retention_works_in_small_batches(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    db.q("""INSERT INTO payremind.inbound_messages (gateway, gateway_id, msisdn, short_code, text, action, received_at)
            SELECT 'json', 'm' || g, '+15145556003', '27022', 'x', 'none', now() - interval '400 days'
              FROM generate_series(1, 2500) g""")
    # The history operators read (sql/011): retried attempts, opt-outs and opt-ins, operators' actions about
    # a person, all 400 days old. The event behind a standing opt-out stays as long as the opt-out.
    old = "now() - interval '400 days'"
    db.q(f"""INSERT INTO payremind.attempts (reminder_id, attempt, ended_at, error)
             VALUES (gen_random_uuid(), 1, {old}, 'http 503')""")
    db.q(f"INSERT INTO payremind.opt_outs (msisdn, source, created_at) VALUES ('+15145556004', 'keyword', {old})")
    db.q(f"""INSERT INTO payremind.opt_out_events (msisdn, event, source, at)
             VALUES ('+15145556005', 'opt_out', 'keyword', {old}), ('+15145556005', 'opt_in', NULL, {old})""")
    db.q(f"""INSERT INTO payremind.operator_actions (at, actor, action, msisdn) VALUES ({old}, 'ops', 'opt_in',
             '+15145556005'), ({old}, 'ops', 'pause', NULL)""")
    conf = write_conf(ctx.tmp, db, gw.url)
    p = run_once(conf)
    assert "inbound=2500" in p.stderr, p.stderr
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    assert re.search(r"attempts=1 opt_out_events=2 operator_actions=1 ", p.stderr), p.stderr
    assert db.q("SELECT msisdn, event FROM payremind.opt_out_events") == [("+15145556004", "opt_out")]
    assert db.q("SELECT action FROM payremind.operator_actions") == [("pause",)]  # nobody's data
    assert db.one("SELECT count(*) FROM payremind.attempts") == 0
    # Statements of at most 1000 rows each: three for the inbound texts, one for each other kind.
    line = [ln for ln in p.stderr.splitlines() if "retention: purged" in ln][0]
    kinds = re.findall(r" (\w+)=\d+", line)
    assert len(kinds) == 10 and f"in {3 + len(kinds) - 1} statements" in line, line


harness.main(globals())
