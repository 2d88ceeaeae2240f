"""The twilio dialect end to end (payremindd --once) against the fake Twilio Messages API: the request,
and what each class of Twilio answer does to the reminder (SPEC §5)."""

import base64
import email.utils
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from fake_twilio import FakeTwilio  # noqa: E402
from harness import run_once, summary, write_conf  # noqa: E402

PUBLIC_URL = "https://hooks.aro.example/payremind/"
CALLBACK = "https://hooks.aro.example/payremind/v1/dlr/twilio"
FR_TEMPLATE = "ARO: paiement dû, reçu. Réglez « {link} » ou 1-877-322-1414. Écrivez ARRET pour arrêter."
LINK = r"https://pay\.aro\.ca/p/[A-Za-z0-9_-]{22}"


def twilio(ctx, token=None, short_code="27022", extra="", schedule=None, **gateway):
    """The fake Twilio and a config pointing payremindd at it; token: a different auth token to put in
    the secret file (a wrong one), default the fake's."""
    fake = FakeTwilio()
    ctx.cleanups.append(fake.stop)
    secret = harness.write_secret(ctx.tmp, "twilio-token", token or fake.auth_token)
    gw = dict(dialect="twilio", username=fake.account_sid, secret_file=secret)
    gw.update(gateway)
    conf = write_conf(ctx.tmp, ctx.db, fake.url, gateway=gw, short_code=short_code, extra=extra,
                      schedule=schedule, name=f"twilio-{short_code}.conf")
    return fake, harness.set_listen(conf, public_url=PUBLIC_URL)


def reminder(db, msisdn, *cols):
    """The columns of the one reminder to msisdn."""
    rows = db.q(f"SELECT {', '.join(cols)} FROM payremind.reminders WHERE msisdn = %s", msisdn)
    assert len(rows) == 1, rows
    return rows[0] if len(cols) > 1 else rows[0][0]


def make_due_now(db, msisdn):
    """Pretend a retry's time has come for every reminder to msisdn."""
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s' "
         "WHERE msisdn = %s AND state = 'queued'", msisdn)
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s' WHERE msisdn = %s", msisdn)


def test_201_is_sent_from_an_approved_short_code_with_the_sid_recorded(ctx):
    db = ctx.db
    cases = [("27022", "+15145550001", "fr"), ("270282", "+15145550002", "en")]
    for short_code, msisdn, lang in cases:
        db.add_due(f"T-{short_code}", msisdn, language=lang)
        fake, conf = twilio(ctx, short_code=short_code)
        s = summary(run_once(conf))
        assert s["sent"] == 1, s
        [req] = fake.requests()
        assert req["method"] == "POST", req
        assert req["path"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json", req["path"]
        assert req["headers"]["Content-Type"] == "application/x-www-form-urlencoded", req["headers"]
        expected_auth = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
        assert req["headers"]["Authorization"] == f"Basic {expected_auth}", req["headers"]
        assert req["auth_ok"] and req["status"] == 201, req
        assert sorted(req["form"]) == ["Body", "From", "StatusCallback", "To", "ValidityPeriod"], req["form"]
        # The seconds left in the recipient's window, at most 36000 (the test regions are open every day
        # around the clock: a week-long window).
        assert req["form"]["ValidityPeriod"] == "36000", req["form"]
        assert req["form"]["From"] == short_code and req["form"]["To"] == msisdn, req["form"]
        # The callback names the reminder, so its status reports find it by key.
        rid = db.one("SELECT id::text FROM payremind.reminders WHERE msisdn = %s", req["form"]["To"])
        assert req["form"]["StatusCallback"] == f"{CALLBACK}?ref={rid}", req["form"]
        assert ("ARRET" if lang == "fr" else "STOP") in req["form"]["Body"], req["form"]["Body"]
        [msg] = fake.created()
        assert re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"]) and req["sid"] == msg["sid"], msg
        state, gw_id, code, sent_at = reminder(db, msisdn, "state", "gateway_message_id", "short_code", "sent_at")
        assert (state, gw_id, code) == ("sent", msg["sid"], short_code), (state, gw_id, code)
        assert sent_at is not None


def test_invalid_unreachable_and_landline_numbers_fail_and_are_never_retried(ctx):
    db = ctx.db
    fake, conf = twilio(ctx)
    cases = [("+15145550011", 21211), ("+15145550012", 21612), ("+15145550013", 21614)]
    for i, (msisdn, code) in enumerate(cases):
        fake.on(msisdn, code=code)
        db.add_due(f"P-{i}", msisdn)
    p = run_once(conf)
    assert summary(p)["failed"] == 3, p.stdout
    for msisdn, code in cases:
        state, attempts, err = reminder(db, msisdn, "state", "attempts", "last_error")
        assert (state, attempts) == ("failed", 1), (msisdn, state, attempts)
        assert f"twilio {code}" in err, err
        # Twilio's message quotes the number: it is masked in the error and the log.
        assert msisdn not in err and msisdn not in p.stderr, (err, p.stderr)
    # Nothing is retried, however often the daemon runs and whatever the due rows' times say.
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    s = summary(run_once(conf))
    assert s["sent"] == 0 and s["failed"] == 0 and s["retried"] == 0, s
    assert sorted(r["form"]["To"] for r in fake.requests()) == [m for m, _ in cases]
    assert db.states() == {"failed": 3}


def test_unsubscribed_recipient_21610_fails_and_opts_the_number_out(ctx):
    db = ctx.db
    fake, conf = twilio(ctx)
    msisdn = "+15145550021"
    # A first account's reminder waits for a retry (429); a second account of the same number is put
    # off meanwhile (the gap: the waiting reminder may go out at any moment).
    fake.on(msisdn, status=429, code=20429, retry_after=60, times=1)
    db.add_due("O-refused", msisdn)
    assert summary(run_once(conf))["retried"] == 1
    db.add_due("O-second", msisdn)
    s = summary(run_once(conf))
    assert s["sent"] == 0 and s["rows_skipped"] == 1, s
    # The retry is refused: the number unsubscribed (21610).
    fake.on(msisdn, code=21610)
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s' WHERE msisdn = %s", msisdn)
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s' WHERE account_ref = 'O-refused'")
    s = summary(run_once(conf))
    assert s["failed"] == 1, s
    refused = db.q("SELECT r.state, r.last_error FROM payremind.reminders r JOIN payremind.due_accounts d "
                   "ON d.id = r.due_account_id WHERE d.account_ref = 'O-refused'")
    assert refused[0][0] == "failed" and "twilio 21610" in refused[0][1], refused
    assert db.q("SELECT source FROM payremind.opt_outs WHERE msisdn = %s", msisdn) == [("gateway",)]
    # Every row of the number is cancelled when its time comes: the second account, a new due row, and
    # the refused row's next step.
    db.add_due("O-later", msisdn)
    make_due_now(db, msisdn)
    s = summary(run_once(conf))
    assert s["sent"] == 0 and s["rows_closed"] == 3, s
    assert len(fake.requests(msisdn)) == 2
    assert db.one("SELECT count(*) FROM payremind.due_accounts WHERE msisdn = %s AND next_at IS NULL",
                  msisdn) == 3


def test_authentication_failure_pauses_sending_and_fails_nothing(ctx):
    db = ctx.db
    fake, conf = twilio(ctx, token="0" * 32)
    numbers = ["+15145550031", "+15145550032"]
    for i, msisdn in enumerate(numbers):
        db.add_due(f"C-{i}", msisdn)
    p = run_once(conf)
    s = summary(p)
    assert s["sent"] == 0 and s["failed"] == 0, s
    reqs = fake.requests()
    assert reqs and all(not r["auth_ok"] and r["code"] == 20003 for r in reqs), reqs
    assert reqs[0]["auth_user"] == fake.account_sid
    for msisdn in numbers:
        state, attempts, nxt = reminder(db, msisdn, "state", "attempts", "next_attempt_at > now()")
        assert (state, attempts, nxt) == ("queued", 0, True), (msisdn, state, attempts, nxt)
    assert "sending paused" in p.stderr and "twilio 20003: Authenticate" in p.stderr, p.stderr
    assert fake.auth_token not in p.stderr and "0" * 32 not in p.stderr
    # Once the operator puts the right token in place, the same reminders go out, counted as first attempts.
    harness.write_secret(ctx.tmp, "twilio-token", fake.auth_token)
    for msisdn in numbers:
        make_due_now(db, msisdn)
    assert summary(run_once(conf))["sent"] == 2
    for msisdn in numbers:
        assert reminder(db, msisdn, "state", "attempts") == ("sent", 1)


def test_rate_limited_429_and_unavailable_503_wait_then_are_sent(ctx):
    db = ctx.db
    fake, conf = twilio(ctx)
    slow, plain, busy = "+15145550041", "+15145550042", "+15145550043"
    fake.on(slow, status=429, code=20429, retry_after=30, times=1)
    fake.on(plain, status=429, code=20429, times=1)
    fake.on(busy, status=503, times=1)  # Twilio is down: nothing was created, it is retried (never unknown)
    db.add_due("R-slow", slow)
    db.add_due("R-plain", plain)
    db.add_due("R-busy", busy)
    s = summary(run_once(conf))
    assert s["retried"] == 3 and s["sent"] == 0 and s["unknown"] == 0, s
    # The wait counts from the refused request: Retry-After is a floor; without it, the backoff (base 1 s).
    for msisdn, low, high in ((slow, 29.99, 40), (plain, 0.4, 10), (busy, 0.4, 10)):
        [req] = fake.requests(msisdn)
        state, attempts, nxt, due_nxt = reminder(
            db, msisdn, "state", "attempts", "extract(epoch FROM next_attempt_at)::float8",
            "(SELECT extract(epoch FROM d.next_at)::float8 FROM payremind.due_accounts d WHERE d.id = due_account_id)")
        assert (state, attempts) == ("queued", 1), (msisdn, state, attempts)
        assert low <= nxt - req["time"] <= high and abs(due_nxt - nxt) < 1, (msisdn, nxt - req["time"], due_nxt)
    # A run before Retry-After has passed leaves that one alone.
    run_once(conf)
    assert len(fake.requests(slow)) == 1
    for msisdn in (slow, plain, busy):
        make_due_now(db, msisdn)
    run_once(conf)
    for msisdn, first in ((slow, 429), (plain, 429), (busy, 503)):
        assert [r["status"] for r in fake.requests(msisdn)] == [first, 201]
        [msg] = fake.created(msisdn)
        assert reminder(db, msisdn, "state", "attempts", "gateway_message_id") == ("sent", 2, msg["sid"])


def test_server_errors_and_timeouts_are_unknown_and_never_resent(ctx):
    db = ctx.db
    fake, conf = twilio(ctx, timeout_ms=1000)
    cases = [
        ("+15145550051", dict(status=500, created=True), "twilio 20500"),
        ("+15145550052", dict(status=502), "twilio 20500"),
        ("+15145550053", dict(delay=2.5), ""),
    ]
    for i, (msisdn, rule, _) in enumerate(cases):
        fake.on(msisdn, **rule)
        db.add_due(f"U-{i}", msisdn)
    s = summary(run_once(conf))
    assert s["unknown"] == 3 and s["sent"] == 0, s
    for msisdn, _, err in cases:
        state, last_error, sent_at = reminder(db, msisdn, "state", "last_error", "sent_at")
        assert state == "unknown" and sent_at is not None, (msisdn, state, sent_at)
        assert err in last_error, (msisdn, last_error)
    # Twilio may have created them (the 500 and the slow one did): no later run sends them again.
    harness.wait_until(lambda: len(fake.created()) == 2, what="the slow message")
    assert sorted(m["to"] for m in fake.created()) == ["+15145550051", "+15145550053"]
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    run_once(conf)
    assert sorted(r["form"]["To"] for r in fake.requests()) == [m for m, _, _ in cases]
    assert db.states() == {"unknown": 3}


def test_french_accents_arrive_intact_in_the_utf8_form_body(ctx):
    db = ctx.db
    templates = f'templates = {{ fr = "{FR_TEMPLATE}"; }};'
    fake, conf = twilio(ctx, extra=templates)
    db.add_due("F-1", "+15145550061", language="fr")
    assert summary(run_once(conf))["sent"] == 1
    [req] = fake.requests()
    pattern = re.escape(FR_TEMPLATE).replace(re.escape("{link}"), LINK)
    assert re.fullmatch(pattern, req["form"]["Body"]), req["form"]["Body"]
    # UTF-8, percent-encoded: é is %C3%A9, « is %C2%AB (no Latin-1, no raw bytes).
    assert re.search(rb"R%C3%A9glez(%20|\+)%C2%AB", req["raw"], re.I) and req["raw"].isascii(), req["raw"]
    [msg] = fake.created()
    assert msg["body"] == req["form"]["Body"] and msg["num_segments"] == "2", msg


def call_fake(fake, path, form=None, auth=None):
    """(status, headers, JSON body) of one request to the fake; form: POST it form-encoded."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(fake.url + path, data=data)
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.load(e)


def test_fake_twilio_answers_like_the_documented_api(ctx):
    # The other tests trust the fake; this pins the parts of Twilio's behaviour they rely on.
    fake = FakeTwilio()
    ctx.cleanups.append(fake.stop)
    fake.on("+15145550071", code=21211)
    fake.on("+15145550072", status=429, code=20429, retry_after=7)
    good = (fake.account_sid, fake.auth_token)
    path = f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    form = {"To": "+15145550070", "From": "27022", "Body": "Bonjour", "StatusCallback": CALLBACK}
    without = lambda key: {k: v for k, v in form.items() if k != key}  # noqa: E731
    cases = [
        ("wrong token", path, form, (fake.account_sid, "x" * 32), 401, 20003),
        ("no credentials", path, form, None, 401, 20003),
        ("another account", path.replace(fake.account_sid, "AC" + "0" * 32), form, good, 401, 20003),
        ("no To", path, without("To"), good, 400, 21604),
        ("no From", path, without("From"), good, 400, 21603),
        ("no Body", path, without("Body"), good, 400, 21602),
        ("scripted invalid number", path, dict(form, To="+15145550071"), good, 400, 21211),
        ("scripted rate limit", path, dict(form, To="+15145550072"), good, 429, 20429),
        ("unknown resource", "/2010-04-01/Accounts/x/Calls.json", form, good, 404, 20404),
    ]
    for name, url, data, auth, status, code in cases:
        got, headers, body = call_fake(fake, url, data, auth)
        assert (got, body.get("code"), body.get("status")) == (status, code, status), (name, got, body)
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}" and body["message"], (name, body)
        assert (headers.get("WWW-Authenticate") is not None) == (status == 401), (name, dict(headers))
        assert headers.get("Retry-After") == ("7" if code == 20429 else None), (name, dict(headers))
    assert fake.created() == [] and [r["code"] for r in fake.requests()] == [c[5] for c in cases]
    status, _, msg = call_fake(fake, path, form, good)
    assert status == 201 and re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"]), (status, msg)
    assert (msg["status"], msg["to"], msg["from"], msg["body"], msg["num_segments"]) == (
        "queued", "+15145550070", "27022", "Bonjour", "1"), msg
    assert msg["account_sid"] == fake.account_sid and email.utils.parsedate_to_datetime(msg["date_created"])
    assert msg["uri"] == f"/2010-04-01/Accounts/{fake.account_sid}/Messages/{msg['sid']}.json", msg
    status, _, fetched = call_fake(fake, msg["uri"], auth=good)
    assert (status, fetched) == (200, msg), (status, fetched)


def test_kill_9_in_a_rate_limited_batch_sends_each_waiting_reminder_once(ctx):
    # Twilio has no idempotency key: only requests that may have left the daemon may become `unknown`.
    numbers = [f"+1450557{i:04d}" for i in range(150)]
    for i, n in enumerate(numbers):
        ctx.db.add_due(f"TK-{i}", n)
    fake, conf = twilio(ctx, rate_per_second=10.0, max_in_flight=8, schedule={"batch_size": 500, "lease_s": 5})
    f = harness.kill_9_mid_batch(ctx, conf, numbers, lambda: [m["to"] for m in fake.created()],
                                 max_in_flight=8, lease_s=5)
    assert f["at_kill"].get("sent", 0) >= 10 and f["leased_at_kill"] > 0, f


harness.main(globals())
