"""One batch end to end (payremindd --once) against a real PostgreSQL and the sandbox gateway."""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import run_once, summary, write_conf  # noqa: E402
from fake_twilio import num_segments  # noqa: E402

LINK_RE = re.compile(r"https://pay\.aro\.ca/p/([A-Za-z0-9_-]{22})(?![A-Za-z0-9_-])")


def test_every_eligible_row_gets_exactly_one_sms(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    for i in range(30):
        db.add_due(f"A-{i}", f"+1514555{i:04d}", language="fr" if i % 2 else "en")
    conf = write_conf(ctx.tmp, db, gw.url)
    p = run_once(conf)
    assert summary(p)["sent"] == 30, p.stdout
    got = gw.accepted()
    assert len(got) == 30, len(got)
    assert len({r["key"] for r in got}) == 30
    assert {r["from"] for r in got} <= {"27022", "270282"}
    assert sorted(r["to"] for r in got) == sorted(f"+1514555{i:04d}" for i in range(30))
    # The Idempotency-Key and the json reference are the reminder id.
    ids = {str(r[0]) for r in db.q("SELECT id FROM payremind.reminders WHERE state = 'sent'")}
    assert {r["key"] for r in got} == ids and {r["reference"] for r in got} == ids
    assert db.states() == {"sent": 30}
    # French rows get the French template, English rows the English one; each carries one link.
    for r in got:
        lang = db.one("SELECT d.language FROM payremind.reminders m JOIN payremind.due_accounts d "
                      "ON d.id = m.due_account_id WHERE m.id = %s", r["key"])
        assert ("ARRET" in r["text"]) == (lang == "fr"), r["text"]
        assert ("STOP" in r["text"]) == (lang == "en"), r["text"]
        # the phone line as each language writes it, and the account reference for online banking
        ref = db.one("SELECT d.account_ref FROM payremind.reminders m JOIN payremind.due_accounts d "
                     "ON d.id = m.due_account_id WHERE m.id = %s", r["key"])
        assert (lang == "fr" and "1 877 322-1414" in r["text"]) or (lang == "en" and "1-877-322-1414" in r["text"])
        assert r["text"].startswith("ARO") and r["text"].count(ref + ".") == 2, r["text"]
        assert len(LINK_RE.findall(r["text"])) == 1, r["text"]


def test_second_once_sends_nothing_new(ctx):
    gw = ctx.sandbox()
    for i in range(5):
        ctx.db.add_due(f"B-{i}", f"+1438555{i:04d}")
    conf = write_conf(ctx.tmp, ctx.db, gw.url)
    assert summary(run_once(conf))["sent"] == 5
    s = summary(run_once(conf))
    assert s["sent"] == 0, s
    assert len(gw.records()) == 5


def test_settled_held_and_opted_out_rows_get_nothing(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("C-ok", "+15145550001")
    settled = db.add_due("C-settled", "+15145550002")
    db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE id = %s", settled)
    db.add_due("C-held", "+15145550003", contact_hold="dispute")
    db.add_due("C-out", "+15145550004")
    db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES ('+15145550004', 'operator')")
    conf = write_conf(ctx.tmp, db, gw.url)
    s = summary(run_once(conf))
    assert [r["to"] for r in gw.accepted()] == ["+15145550001"]
    assert s["sent"] == 1 and s["rows_closed"] == 3, s
    # Nothing is queued for them either, and a later run still sends nothing.
    assert db.one("SELECT count(*) FROM payremind.reminders") == 1
    run_once(conf)
    assert len(gw.records()) == 1


def test_row_settled_before_the_batch_is_not_contacted(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    rid = db.add_due("D-1", "+15145550011")
    db.add_due("D-2", "+15145550012")
    conf = write_conf(ctx.tmp, db, gw.url)
    db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE id = %s", rid)
    run_once(conf)
    assert [r["to"] for r in gw.accepted()] == ["+15145550012"]


def test_not_yet_due_rows_wait_for_their_offset(ctx):
    gw = ctx.sandbox()
    ctx.db.add_due("E-today", "+15145550021", days_ago=0)   # offset 1 day: not yet
    ctx.db.add_due("E-old", "+15145550022", days_ago=1)     # due yesterday: step 0 now
    conf = write_conf(ctx.tmp, ctx.db, gw.url)
    s = summary(run_once(conf))
    assert [r["to"] for r in gw.accepted()] == ["+15145550022"]
    assert s["rows_skipped"] == 1, s
    nxt = ctx.db.one("SELECT next_at > now() FROM payremind.due_accounts WHERE account_ref = 'E-today'")
    assert nxt is True


def test_503_is_retried_later_and_400_failed_for_good(ctx):
    gw = ctx.sandbox("--rule", "+15145550031=503*1", "--rule", "+15145550032=400", "--retry-after", "1")
    db = ctx.db
    db.add_due("F-503", "+15145550031")
    db.add_due("F-400", "+15145550032")
    # A backoff far longer than the test (not a one-second margin), then the test moves the time on.
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"backoff_base_ms": 600000, "backoff_cap_ms": 600000})
    s = summary(run_once(conf))
    assert s["retried"] == 1 and s["failed"] == 1, s
    st, attempts, nxt = db.q("SELECT state, attempts, next_attempt_at > now() FROM payremind.reminders r "
                             "JOIN payremind.due_accounts d ON d.id = r.due_account_id "
                             "WHERE d.account_ref = 'F-503'")[0]
    assert (st, attempts, nxt) == ("queued", 1, True)
    assert db.one("SELECT state FROM payremind.reminders WHERE msisdn = '+15145550032'") == "failed"
    assert "400" in db.one("SELECT last_error FROM payremind.reminders WHERE msisdn = '+15145550032'")
    # Not before its time...
    run_once(conf)
    assert len(gw.records()) == 2
    # ...then once the backoff has passed the 503 goes through with the same key; the 400 never again.
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s' WHERE state = 'queued'")
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s' WHERE account_ref = 'F-503'")
    s = summary(run_once(conf))
    assert s["sent"] == 1, s
    recs = gw.records()
    to_503 = [r for r in recs if r["to"] == "+15145550031"]
    assert [r["status"] for r in to_503] == [503, 202] and to_503[0]["key"] == to_503[1]["key"]
    assert len([r for r in recs if r["to"] == "+15145550032"]) == 1
    assert db.one("SELECT attempts FROM payremind.reminders WHERE msisdn = '+15145550031'") == 2
    assert db.one("SELECT state FROM payremind.reminders WHERE msisdn = '+15145550031'") == "sent"


def test_no_written_notice_means_no_sms_where_the_region_has_a_notice_delay(ctx):
    # SPEC §2: notice_sent_on NULL means no notice was sent; QC has a 5-day delay, BC none.
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("N-none", "+15145550071")
    db.add_due("N-old", "+15145550072", notice_sent_on="2026-01-05")
    db.add_due("N-bc", "+16045550073", region="BC", time_zone="America/Vancouver")
    all_day = harness.ALL_DAY
    regions = f"""regions = {{
  QC = {{ windows = ( {all_day} ); holidays = "none"; notice_days = 5; }};
  BC = {{ windows = ( {all_day} ); holidays = "none"; notice_days = 0; }};
}};"""
    s = summary(run_once(write_conf(ctx.tmp, db, gw.url, regions=regions)))
    assert (s["sent"], s["rows_skipped"]) == (2, 1), s
    assert sorted(r["to"] for r in gw.accepted()) == ["+15145550072", "+16045550073"]
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE msisdn = '+15145550071'") == 0
    # The row is looked at again within the hour, when billing may have sent the notice since.
    assert db.one("SELECT next_at BETWEEN now() + interval '50 min' AND now() + interval '70 min' "
                  "FROM payremind.due_accounts WHERE account_ref = 'N-none'")


def test_a_paid_result_stops_the_next_reminders_before_billing_settles(ctx):
    # SPEC §10: after `paid`, the due row gets no further reminder (reason paid), settled_at still NULL.
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("PD-1", "+15145550081", days_ago=10)  # steps 0 (day 1) and 1 (day 7) are both due
    db.add_due("PD-2", "+15145550082", days_ago=10)
    conf = write_conf(ctx.tmp, db, gw.url, schedule={"offsets_days": [1, 7]})
    assert summary(run_once(conf))["sent"] == 2
    rid = db.one("SELECT r.id::text FROM payremind.reminders r JOIN payremind.due_accounts d"
                 " ON d.id = r.due_account_id WHERE d.account_ref = 'PD-1'")
    record = "SELECT payremind.payment_record(%s, %s::uuid, %s, %s)"
    assert db.one(record, "pay-1", rid, "paid", 12345) == "recorded"
    assert db.one(record, "pay-1", rid, "failed", 1) == "repeat"  # a repeated id changes nothing
    assert db.one(record, "pay-2", "00000000-0000-7000-8000-000000000000", "paid", 1) == "unknown"
    assert db.q("SELECT id, status, amount_cents FROM payremind.payments") == [("pay-1", "paid", 12345)]
    assert db.one("SELECT settled_at IS NULL AND paid_at IS NOT NULL FROM payremind.due_accounts"
                  " WHERE account_ref = 'PD-1'")
    # Step 1 comes due (the gap is waived here so that only `paid` can hold PD-1 back).
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    db.q("UPDATE payremind.reminders SET sent_at = now() - interval '2 days'")
    db.q("UPDATE payremind.contacts SET last_at = now() - interval '2 days'")
    p = harness.ctl(conf, "batch", "--dry-run", "--json")
    assert p.returncode == 0, p.stderr
    reasons = {r["account_ref"]: r["reason"] for r in json.loads(p.stdout)}
    assert reasons == {"PD-1": "paid", "PD-2": None}, reasons
    run_once(conf)
    assert sorted(r["to"] for r in gw.accepted()) == ["+15145550081", "+15145550082", "+15145550082"]
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE msisdn = '+15145550081'") == 1


def test_an_account_reference_too_long_for_the_text_fails_naming_the_field_never_cut(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("X" * 300, "+15145550091")
    db.add_due("OK-1", "+15145550092")
    s = summary(run_once(write_conf(ctx.tmp, db, gw.url)))
    assert (s["sent"], s["failed"]) == (1, 1), s
    assert [r["to"] for r in gw.accepted()] == ["+15145550092"]
    assert db.one("SELECT last_error FROM payremind.reminders WHERE msisdn = '+15145550091'") == \
        "account_ref: longer than 255 characters"


def test_a_retry_carries_the_text_and_sender_of_its_first_attempt_whatever_the_config_became(ctx):
    # SPEC §3: same Idempotency-Key, byte-identical text, same sender, although the templates and the
    # short code changed between the attempts (and billing changed the amount the text shows).
    gw = ctx.sandbox("--rule", "+15145550061=503*1")
    db = ctx.db
    db.add_due("R-1", "+15145550061", language="en")
    v1 = 'templates = { en = "ARO v1: {amount} due. Pay at {link} Reply STOP."; };'
    s = summary(run_once(write_conf(ctx.tmp, db, gw.url, extra=v1)))
    assert s["retried"] == 1, s
    v2 = 'templates = { en = "ARO, new wording: {amount} is due, pay at {link} or reply STOP."; };'
    conf2 = write_conf(ctx.tmp, db, gw.url, extra=v2, short_code="270282", name="v2.conf")
    db.q("UPDATE payremind.due_accounts SET amount_cents = 99999")
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s'")
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    assert summary(run_once(conf2))["sent"] == 1
    first, retry = gw.records()
    assert (first["status"], retry["status"]) == (503, 202)
    assert first["text"].startswith("ARO v1: $123.45 due. Pay at https://pay.aro.ca/p/"), first["text"]
    assert (retry["key"], retry["text"], retry["from"]) == (first["key"], first["text"], "27022")
    # The stored text is gone once the reminder is final.
    assert db.q("SELECT state, body, link_token FROM payremind.reminders") == [("sent", None, None)]
    # A new reminder after the change does use the new configuration.
    db.add_due("R-2", "+15145550062", language="en")
    run_once(conf2)
    new = [r for r in gw.records() if r["to"] == "+15145550062"][0]
    assert new["text"].startswith("ARO, new wording: $123.45 is due") and new["from"] == "270282", new


def test_timeout_after_sending_is_never_resent_blindly(ctx):
    # The sandbox takes the message but answers after the daemon's timeout: the outcome is ambiguous.
    gw = ctx.sandbox("--rule", "+15145550041=202:1500")
    db = ctx.db
    db.add_due("G-1", "+15145550041")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"timeout_ms": 400})
    s = summary(run_once(conf))
    assert s["retried"] == 1 and s["sent"] == 0, s
    key = db.one("SELECT id::text FROM payremind.reminders")
    assert db.one("SELECT state FROM payremind.reminders") == "queued"
    # The retry carries the same Idempotency-Key, so the gateway answers from memory: still one SMS.
    time.sleep(1.6)
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    s = summary(run_once(conf))
    recs = gw.records()
    assert [r["key"] for r in recs] == [key, key], recs
    assert len(gw.accepted()) == 1
    assert db.one("SELECT state FROM payremind.reminders") == "sent"


def test_tokens_are_hashed_and_plaintext_is_gone_once_final(ctx):
    gw = ctx.sandbox("--rule", "+15145550052=503")
    db = ctx.db
    db.add_due("H-1", "+15145550051")
    db.add_due("H-2", "+15145550052")
    conf = write_conf(ctx.tmp, db, gw.url)
    run_once(conf)
    text = [r for r in gw.accepted() if r["to"] == "+15145550051"][0]["text"]
    token = LINK_RE.search(text).group(1)
    # Only the SHA-256 is stored; no plaintext for the final reminder, anywhere in the tables.
    assert db.one("SELECT count(*) FROM payremind.payment_tokens WHERE token_hash = sha256(%s::bytea)",
                  token.encode()) == 1
    assert db.one("SELECT link_token FROM payremind.reminders WHERE msisdn = '+15145550051'") is None
    for table in ("reminders", "payment_tokens", "due_accounts", "opt_outs"):
        dump = db.one(f"SELECT string_agg(t::text, ' ') FROM payremind.{table} t") or ""
        assert token not in dump, table
    # The retry-waiting one keeps its token only while it is queued.
    assert db.one("SELECT link_token IS NOT NULL FROM payremind.reminders WHERE msisdn = '+15145550052'")
    # And the daemon's log never holds the token or a full number.
    p = run_once(conf)
    assert token not in p.stderr and "+15145550051" not in p.stderr


def test_token_peek_does_not_consume_and_redeem_works_once_under_20_racers(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("I-1", "+15145550061", amount_cents=4200)
    conf = write_conf(ctx.tmp, db, gw.url)
    run_once(conf)
    token = LINK_RE.search(gw.accepted()[0]["text"]).group(1)
    for _ in range(3):
        assert db.q("SELECT account_ref, amount_cents FROM payremind.token_peek(%s)", token) == [("I-1", 4200)]
    results = []
    barrier = threading.Barrier(20)

    def racer():
        conn = db.connect()
        conn.autocommit = True
        with conn.cursor() as c:
            barrier.wait()
            c.execute("SELECT account_ref FROM payremind.token_redeem(%s)", (token,))
            results.append(c.fetchall())
        conn.close()

    threads = [threading.Thread(target=racer) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0] * 19 + [1], results
    assert db.q("SELECT * FROM payremind.token_peek(%s)", token) == []
    assert db.q("SELECT * FROM payremind.token_redeem(%s)", token) == []
    assert db.q("SELECT * FROM payremind.token_redeem('not-a-token')") == []


def test_the_rate_counts_segments_not_messages(ctx):
    # gateway.rate_per_second is the short code's rate in SMS segments (SPEC §11): 30 reminders of 2
    # segments at 20 segments/s take about 3 s, not the 1.5 s of 20 messages/s.
    gw = ctx.sandbox()
    db = ctx.db
    fr = ("ARO : paiement attendu, dossier {ref}. En ligne : {link} Par telephone : 1 877 322-1414, du lundi au "
          "vendredi, de 8 h a 20 h (heure de l'Est). Par votre banque : ARO, numero de compte {ref}. "
          "Textez ARRET pour ne plus en recevoir.")
    conf = write_conf(ctx.tmp, db, gw.url, gateway=dict(rate_per_second=20.0, max_in_flight=4),
                      extra=f'templates = {{ fr = "{fr}"; }};')
    for i in range(30):
        db.add_due(f"SEG-{i}", f"+1514560{i:04d}")
    assert summary(run_once(conf))["sent"] == 30
    recs = gw.accepted()
    assert len(recs) == 30 and all(160 < len(r["text"]) <= 306 for r in recs), [len(r["text"]) for r in recs]
    times = sorted(harness.record_time(r) for r in recs)
    # 60 segments: the bucket's first 1.4 go at once, the rest at 20/s
    assert times[-1] - times[0] >= (60 - 2 - 1.4) / 20.0 * 0.95, times[-1] - times[0]


def test_a_row_the_claims_passed_while_another_daemon_held_it_is_sent_in_the_same_batch(ctx):
    # Claims of 5 rows while the gateway takes 0.1 s a request, one at a time: 8 claims over 4 s. Row 2
    # is leased by another daemon for the first second: the first claim passes it; a later claim of the
    # same batch must find it, whatever a claim skips to save work (bench/RESULTS.md: claims that start
    # where the last one stopped must walk once more from the start before a batch ends).
    gw = ctx.sandbox("--delay-ms", "100")
    db = ctx.db
    numbers = [f"+1514561{i:04d}" for i in range(40)]
    ids = [db.add_due(f"FL-{i:02d}", n) for i, n in enumerate(numbers)]
    db.q("UPDATE payremind.due_accounts SET lease_until = now() + interval '1 s' WHERE id = %s", ids[2])
    conf = write_conf(ctx.tmp, db, gw.url, gateway=dict(max_in_flight=1), schedule=dict(batch_size=5))
    p = run_once(conf)
    assert summary(p)["sent"] == 40, p.stderr[-2000:]
    sent = [r["to"] for r in gw.accepted()]
    assert sorted(sent) == sorted(numbers), collections.Counter(sent).most_common(3)
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent'") == 40
    assert sent.index(numbers[2]) > 5, sent  # passed by the first claim, found later


def test_each_request_carries_the_end_of_the_recipients_window(ctx):
    # SPEC §11: json "expires_at" is the end of the window the recipient is in, in UTC with Z and whole
    # seconds. The test regions are open 00:00-24:00 every day: one window a week long (followed at most
    # a week), ending at local midnight 8 days from today in the row's zone.
    gw = ctx.sandbox()
    db = ctx.db
    conf = write_conf(ctx.tmp, db, gw.url)
    db.add_due("W-1", "+15145560101", time_zone="America/Toronto")
    db.add_due("W-2", "+15145560102", time_zone="America/Vancouver")
    assert summary(run_once(conf))["sent"] == 2
    # from each request's own instant, so a local midnight between the send and this check changes nothing
    at = {r["to"]: harness.record_time(r) for r in gw.accepted()}
    want = {z: db.one("""SELECT to_char(((to_timestamp(%s) AT TIME ZONE %s)::date + 8)::timestamp AT TIME ZONE %s
                                 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""", at[n], z, z)
            for n, z in (("+15145560101", "America/Toronto"), ("+15145560102", "America/Vancouver"))}
    got = {r["to"]: r["expires_at"] for r in gw.accepted()}
    assert got == {"+15145560101": want["America/Toronto"], "+15145560102": want["America/Vancouver"]}, (got, want)


def test_no_request_starts_in_the_last_seconds_of_the_window(ctx):
    # schedule.window_guard_s: a reminder whose recipient's window closes in less than that waits for the
    # next window (SPEC §11). A zone where it is now mid-day, a window closing 2.5 to 3.5 minutes from now.
    import datetime
    zone, local = harness.zone_at_local(120, 1300)
    close = local.hour * 60 + local.minute + 3 + (local.second >= 30)
    regions = f"regions = {{ QC = {harness.window_until(f'{close // 60:02d}:{close % 60:02d}')} }};"
    gw = ctx.sandbox()
    db = ctx.db
    db.add_due("G-1", "+15145560201", time_zone=zone)
    guarded = write_conf(ctx.tmp, db, gw.url, regions=regions, schedule=dict(window_guard_s=300))
    dry = harness.ctl(guarded, "batch", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [r["reason"] for r in json.loads(dry.stdout)] == ["window"], dry.stdout
    s = summary(run_once(guarded))
    assert s["sent"] == 0 and gw.accepted() == [], (s, gw.accepted())
    # The contact rules count the guard as closed (reason window, in the dry run above too): no reminder is
    # created. The row was looked at: due from then, it is a row of this local day (or, tomorrow, one
    # left over), and its group, closed, is not claimed again until its next window opens.
    assert db.q("SELECT count(*) FROM payremind.reminders") == [(0,)]
    looked = db.one("SELECT next_at FROM payremind.due_accounts")
    assert abs(looked.timestamp() - time.time()) < 30, looked
    assert summary(run_once(guarded))["rows_skipped"] == 0 and db.one("SELECT next_at FROM payremind.due_accounts") == looked
    # With 150 s or more left and a 30 s guard it goes.
    db.q("UPDATE payremind.due_accounts SET next_at = now()")
    relaxed = write_conf(ctx.tmp, db, gw.url, regions=regions, schedule=dict(window_guard_s=30), name="relaxed.conf")
    assert summary(run_once(relaxed))["sent"] == 1
    [rec] = gw.accepted()
    closes = local.replace(hour=close // 60, minute=close % 60, second=0, microsecond=0)
    assert rec["expires_at"] == closes.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), rec


def test_the_earliest_closing_window_goes_first_and_earlier_days_before_today(ctx):
    # SPEC §11's order, seen in the order the gateway receives (one request at a time, claims of 3): the
    # rows left over from an earlier day first, then the current day's, each time region by region with
    # the window that closes first leading; within a region the rows nobody has looked at, then by
    # next_at. A region whose window has closed gives nothing, and its new row is only looked at.
    import datetime
    zone, local = harness.zone_at_local(4 * 60, 19 * 60)
    hhmm = lambda hours: (lambda m: f"{m // 60:02d}:{m % 60:02d}")(local.hour * 60 + local.minute + hours * 60)  # noqa: E731
    window = harness.window_until
    regions = (f"regions = {{ QC = {window(hhmm(2))} ON = {window(hhmm(3))} BC = {window(hhmm(4))}"
               f" NB = {window(hhmm(-2))} }};")
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [  # ref, region, next_at (None: as billing inserts it, never looked at)
        ("Q-today-2", "QC", midnight + datetime.timedelta(minutes=30)),
        ("Q-today-1", "QC", midnight + datetime.timedelta(minutes=10)),
        ("Q-new", "QC", None),
        ("O-new", "ON", None),
        ("O-today", "ON", midnight),
        ("B-today", "BC", local - datetime.timedelta(minutes=5)),
        ("B-yesterday", "BC", midnight - datetime.timedelta(hours=12)),
        ("B-last-week", "BC", midnight - datetime.timedelta(days=6)),
        ("N-new", "NB", None),
    ]
    gw = ctx.sandbox()
    db = ctx.db
    number = {}
    for i, (ref, region, at) in enumerate(rows):
        number[f"+1514556{300 + i:04d}"] = ref
        did = db.add_due(ref, f"+1514556{300 + i:04d}", region=region, time_zone=zone)
        if at is not None:
            db.q("UPDATE payremind.due_accounts SET next_at = %s WHERE id = %s", at, did)
    conf = write_conf(ctx.tmp, db, gw.url, regions=regions, gateway=dict(max_in_flight=1),
                      schedule=dict(batch_size=3))
    assert summary(run_once(conf))["sent"] == 8
    got = [number[r["to"]] for r in gw.accepted()]
    assert got == ["B-last-week", "B-yesterday", "Q-new", "Q-today-1", "Q-today-2", "O-new", "O-today",
                   "B-today"], got
    # NB's window closed two hours ago: its new row was looked at (due from then: today's, tomorrow a row
    # left over) and waits for tomorrow's opening.
    [(looked, step)] = db.q("SELECT next_at, next_step FROM payremind.due_accounts WHERE account_ref = 'N-new'")
    assert step == 0 and midnight.timestamp() < looked.timestamp() <= time.time(), looked
    assert db.q("SELECT count(*) FROM payremind.reminders r JOIN payremind.due_accounts d"
                " ON d.id = r.due_account_id WHERE d.account_ref = 'N-new'") == [(0,)]


def test_token_expired_settled_or_paid_gives_no_row(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    a = db.add_due("J-1", "+15145550071")
    db.add_due("J-2", "+15145550072")
    c = db.add_due("J-3", "+15145550073")
    conf = write_conf(ctx.tmp, db, gw.url)
    run_once(conf)
    toks = {r["to"]: LINK_RE.search(r["text"]).group(1) for r in gw.accepted()}
    db.q("UPDATE payremind.due_accounts SET settled_at = now() WHERE id = %s", a)
    assert db.q("SELECT * FROM payremind.token_peek(%s)", toks["+15145550071"]) == []
    assert db.q("SELECT * FROM payremind.token_redeem(%s)", toks["+15145550071"]) == []
    # The portal reported the row paid (billing has not settled it yet): nothing to pay twice.
    assert len(db.q("SELECT * FROM payremind.token_peek(%s)", toks["+15145550073"])) == 1
    db.q("UPDATE payremind.due_accounts SET paid_at = now() WHERE id = %s", c)
    assert db.q("SELECT * FROM payremind.token_peek(%s)", toks["+15145550073"]) == []
    assert db.q("SELECT * FROM payremind.token_redeem(%s)", toks["+15145550073"]) == []
    db.q("UPDATE payremind.payment_tokens SET expires_at = now() - interval '1 s'")
    assert db.q("SELECT * FROM payremind.token_redeem(%s)", toks["+15145550072"]) == []


def test_bad_billing_inserts_are_rejected_naming_the_column(ctx):
    import psycopg2
    db = ctx.db
    cases = [
        ("msisdn", dict(msisdn="+1514555012")),
        ("msisdn", dict(msisdn="+15140550123")),
        ("amount_cents", dict(amount_cents=0)),
        ("amount_cents", dict(amount_cents=-5)),
        ("currency", dict(currency="cad")),
        ("language", dict(language="de")),
        ("region", dict(region="Quebec")),
        ("time_zone", dict(time_zone="Mars/Olympus")),
        ("account_ref", dict(account_ref="")),
    ]
    for column, over in cases:
        row = dict(account_ref="K-1", msisdn="+15145550123", amount_cents=100, due_date="2026-11-20")
        row.update(over)
        names = ", ".join(row)
        try:
            db.q(f"INSERT INTO payremind.due_accounts ({names}) VALUES ({', '.join(['%s'] * len(row))})",
                 *row.values())
        except psycopg2.Error as e:
            assert column in e.pgerror, (column, e.pgerror)
            assert e.diag.column_name == column, (column, e.diag.column_name)
        else:
            raise AssertionError(f"{over} was accepted")
    # NULL amount and a duplicate (account_ref, due_date) are refused too.
    db.q("INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date) "
         "VALUES ('K-2', '+15145550123', 1, '2026-11-20')")
    try:
        db.q("INSERT INTO payremind.due_accounts (account_ref, msisdn, amount_cents, due_date) "
             "VALUES ('K-2', '+15145550124', 2, '2026-11-20')")
        raise AssertionError("duplicate accepted")
    except psycopg2.errors.UniqueViolation as e:
        assert "account_ref" in e.pgerror
    # The billing system's own statement from SPEC §2 works as written.
    db.q("""INSERT INTO payremind.due_accounts
  (account_ref, msisdn, amount_cents, currency, due_date, language, region, time_zone)
VALUES ('A-1001', '+15145550123', 12345, 'CAD', DATE '2026-11-20', 'fr', 'QC', 'America/Toronto')
ON CONFLICT (account_ref, due_date) DO NOTHING""")
    assert db.one("SELECT count(*) FROM payremind.due_accounts WHERE account_ref = 'A-1001'") == 1


def test_billing_deleting_a_due_row_deletes_its_reminders_and_tokens(ctx):
    gw = ctx.sandbox()
    db = ctx.db
    gone = db.add_due("DEL-1", "+15145550091")
    db.add_due("DEL-2", "+15145550092")
    run_once(write_conf(ctx.tmp, db, gw.url))
    assert db.one("SELECT count(*) FROM payremind.payment_tokens") == 2
    db.q("DELETE FROM payremind.due_accounts WHERE id = %s", gone)
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE due_account_id = %s", gone) == 0
    assert db.one("SELECT count(*) FROM payremind.reminders") == 1
    assert db.one("SELECT count(*) FROM payremind.payment_tokens") == 1


def test_sender_outside_the_short_codes_is_impossible(ctx):
    import psycopg2
    db = ctx.db
    rid = db.add_due("L-1", "+15145550081")
    try:
        db.q("INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language) "
             "VALUES (%s, 0, '+15145550081', '5551234', 'fr')", rid)
        raise AssertionError("a reminder from 5551234 was stored")
    except psycopg2.errors.CheckViolation as e:
        assert "short_code" in e.pgerror
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, db, gw.url, short_code="5551234")
    p = run_once(conf, check=False)
    assert p.returncode == 78 and "short_code" in p.stderr, (p.returncode, p.stderr)
    assert gw.records() == []


def test_sigterm_mid_batch_leaves_nothing_in_sending(ctx):
    gw = ctx.sandbox("--delay-ms", "300")
    db = ctx.db
    for i in range(200):
        db.add_due(f"M-{i}", f"+1450555{i:04d}")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"max_in_flight": 4})
    p = subprocess.Popen(harness.daemon_cmd(conf, "--once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    harness.wait_until(lambda: len(gw.records()) >= 8, what="first requests")
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    states = db.states()
    assert "sending" not in states, states
    sent = states.get("sent", 0)
    assert 0 < sent < 200, states
    assert sent == len(gw.accepted())
    # Nothing claimed is left leased: the rest goes out on the next run, each exactly once.
    assert db.one("SELECT count(*) FROM payremind.due_accounts WHERE lease_owner IS NOT NULL") == 0
    assert len(gw.records()) >= sent
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{gw.port}/_control", method="POST",
                           data=b'{"delay_ms": 0}', headers={"Content-Type": "application/json"}))
    run_once(conf, timeout=120)
    got = gw.accepted()
    assert len(got) == 200 and len({r["key"] for r in got}) == 200


def test_a_failing_gateway_opens_the_breaker_and_sending_stops(ctx):
    gw = ctx.sandbox("--status", "503")
    db = ctx.db
    for i in range(100):
        db.add_due(f"CB-{i}", f"+1514888{i:04d}")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"max_in_flight": 1})
    p = run_once(conf)
    # 20 failures in a row open the breaker: the rest are handed back untried instead of hammering it.
    assert "circuit breaker closed -> open" in p.stderr, p.stderr
    tried = len(gw.records())
    assert 20 <= tried < 30, tried
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE attempts = 1") == tried
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'queued'") == \
        db.one("SELECT count(*) FROM payremind.reminders")


def test_refused_credentials_hold_sending_and_hand_reminders_back(ctx):
    gw = ctx.sandbox("--bearer", "right-token")
    db = ctx.db
    for i in range(5):
        db.add_due(f"N-{i}", f"+1514999{i:04d}")
    secret = harness.write_secret(ctx.tmp, "gateway_secret", "wrong-token")
    conf = write_conf(ctx.tmp, db, gw.url, gateway={"max_in_flight": 1, "secret_file": secret})
    t0 = time.time()
    p = run_once(conf)
    # One refused request pauses sending; the others are handed back at once rather than waiting out
    # the pause on their leases, and --once ends.
    assert time.time() - t0 < 20, time.time() - t0
    assert "sending paused" in p.stderr, p.stderr
    assert len(gw.records()) == 1 and gw.records()[0]["status"] == 401
    assert db.states() == {"queued": 5}, db.states()
    assert db.one("SELECT max(attempts) FROM payremind.reminders") == 0
    assert db.one("SELECT min(next_attempt_at) > now() + interval '30 s' FROM payremind.reminders") is True
    assert "wrong-token" not in p.stderr
    # Untried (the one refused was not taken either), they go from the code of the daemon that sends
    # them: a retry keeps the sender of an attempt that went, and none did (SPEC §11's failover).
    assert db.q("SELECT DISTINCT short_code FROM payremind.reminders") == [("27022",)]
    right = harness.write_secret(ctx.tmp, "gateway_secret_2", "right-token")
    other = write_conf(ctx.tmp, db, gw.url, gateway={"secret_file": right}, short_code="270282", name="other.conf")
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s'")
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")
    assert summary(run_once(other))["sent"] == 5
    assert sorted(r["from"] for r in gw.accepted()) == ["270282"] * 5, gw.accepted()
    assert db.q("SELECT DISTINCT short_code, attempts FROM payremind.reminders") == [("270282", 1)]



def test_a_retry_from_the_other_code_does_not_wait_behind_this_codes_tokens(ctx):
    # Three reminders tried from 270282 (503) are retried by a daemon on 27022 at 1 segment/s: they keep
    # their sender (SPEC §3) and its own bucket paces them, so they go between this code's five new
    # ones rather than after them. Under the test clock (simulated time moves only when the daemon is
    # idle), texts of s segments: 27022 at 0, s, .. 4s and 270282 at 0, s, 2s; in one queue, the last
    # would go at 6s.
    others = [f"+1514555{7000 + i}" for i in range(3)]
    gw = ctx.sandbox(*[a for n in others for a in ("--rule", f"{n}=503*1")])
    db = ctx.db
    for i, n in enumerate(others):
        db.add_due(f"B-{i}", n, language="en")
    rate = dict(rate_per_second=1.0)
    summary(run_once(write_conf(ctx.tmp, db, gw.url, gateway=rate, short_code="270282", name="b.conf")))
    assert db.q("SELECT short_code, attempts, state FROM payremind.reminders") == [("270282", 1, "queued")] * 3
    for i in range(5):
        db.add_due(f"A-{i}", f"+1514555{8000 + i}", language="en")
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s'")
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s' WHERE next_at > '-infinity'")
    start = time.time()
    p = subprocess.run(harness.daemon_cmd(write_conf(ctx.tmp, db, gw.url, gateway=rate, name="a.conf"), "--once"),
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PAYREMIND_TEST_CLOCK=f"{start}"))
    assert p.returncode == 0 and "PAYREMIND_TEST_CLOCK" in p.stderr, p.stderr
    [segs] = {num_segments(r["text"]) for r in gw.accepted()}
    sent = sorted((round(float(r["clock"]) - start), r["from"]) for r in gw.accepted())
    assert sent == sorted([(t * segs, "27022") for t in range(5)] + [(t * segs, "270282") for t in range(3)]), sent


harness.main(globals())
