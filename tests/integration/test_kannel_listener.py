"""End to end with REAL Kannel 1.4.5 and the REAL daemon in normal mode: phones' keywords (ARRÊT, HELP/AIDE,
START/RETOUR) injected through a fake SMSC reach the listener by Kannel's sms-service, and the replies reach the
MT fake SMSC from the short code written to; Kannel's own DLRs reach the listener by the dlr-url and deliver
every reminder of a batch. See kannel.py for the fixture and /work/shared/KANNEL.md for what Kannel does."""

import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import kannel  # noqa: E402
from harness import write_conf  # noqa: E402

KEY = "kannel-mo-key-0600"
A, B, C = "+15145550101", "+14385550102", "+18195550103"
WAIT = 30  # generous: a loaded 2-core machine, Kannel's and the daemon's threads, PostgreSQL


def wait(pred, what, detail=lambda: ""):
    """harness.wait_until for WAIT seconds; on timeout, detail() (the state then) joins the message."""
    try:
        harness.wait_until(pred, timeout=WAIT, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}: {detail()}") from None


class Stack:
    """Kannel whose sms-service forwards every MO to the daemon's listener (the key as a query parameter,
    since Kannel cannot send headers), and payremindd in normal mode sending through Kannel's smsbox."""

    def __init__(self, ctx):
        assert kannel.available(), "Kannel is not installed: apt-get install kannel kannel-extras"
        self.db = ctx.db
        self.port = harness.free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        get_url = f"{self.public_url}/v1/inbound/kannel?from=%p&to=%P&text=%a&id=%I&key={KEY}"
        self.k = kannel.Kannel(ctx.tmp, get_url=get_url)
        ctx.cleanups.append(self.k.stop)
        conf = write_conf(ctx.tmp, ctx.db, self.k.sendsms_url, gateway=self.k.gateway())
        harness.set_listen(conf, port=self.port, public_url=self.public_url,
                           secret_file=harness.write_secret(ctx.tmp, "listen.key", KEY))
        self.proc = ctx.spawn(harness.daemon_cmd(conf))
        wait(self.healthy, "the listener's /healthz", lambda: "\n" + self.log())

    def healthy(self):
        assert self.proc.poll() is None, f"payremindd exited {self.proc.returncode}:\n{self.log()}"
        try:
            with urllib.request.urlopen(self.public_url + "/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log(self):
        with open(self.proc.log_path) as f:
            return f.read()

    def mo(self, sender, short_code, text, ucs2=False):
        """A phone's message: plain text (Kannel holds it as UTF-8), or UCS-2 as a phone sends any text
        outside GSM-7 (the fake SMSC's "ucs2" line; smsbox's mo-recode hands it on as UTF-8)."""
        if ucs2:
            kannel.inject_mo_coded(self.k, sender, short_code, "ucs2",
                                   urllib.parse.quote_from_bytes(text.encode("utf-16-be")))
        else:
            self.k.inject_mo(sender, short_code, text)

    def mts(self, n):
        """The first n MTs at the fake SMSC, once it has them; after a pause, proof that no more came."""
        self.k.wait_received(n, timeout=WAIT)
        time.sleep(0.5)
        got = self.k.received()
        assert len(got) == n, got
        return got


def parked_reminder(db, msisdn, state, step=0):
    """A reminder in state whose due row the daemon leaves alone (queued ones wait an hour); its id."""
    due = db.add_due(f"KL-{uuid.uuid4().hex[:8]}", msisdn, next_at=None)  # parked as inserted: no race
    token = "t" * 22 if state == "queued" else None
    return str(db.one(
        "INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state, attempts,"
        " next_attempt_at, link_token, sent_at) VALUES (%s, %s, %s, '27022', 'fr', %s, 1,"
        " CASE WHEN %s = 'queued' THEN now() + interval '1 hour' END, %s,"
        " CASE WHEN %s = 'sent' THEN now() END) RETURNING id",
        due, step, msisdn, state, state, token, state))


def replies(db):
    """(msisdn, short_code, kind, language, text) of the replies queued, by number."""
    return db.q("SELECT msisdn, short_code, kind, language, text FROM payremind.replies ORDER BY msisdn")


def wait_replies(db, n):
    wait(lambda: db.one("SELECT count(*) FROM payremind.replies") >= n, f"{n} replies queued by the listener",
         lambda: db.q("SELECT gateway, short_code, text, action FROM payremind.inbound_messages"))
    return replies(db)


def by_receiver(mts):
    got = {m.receiver: m for m in mts}
    assert len(got) == len(mts), mts
    return got


def assert_replies_went_out(stack, want):
    """want: {msisdn: (short_code, kind, language)}. Each reply reached the fake SMSC, from the short code
    written to, its text decoded intact; Kannel's DLR for it then moved the reply to delivered."""
    db = stack.db
    queued = wait_replies(db, len(want))
    assert {r[0]: r[1:4] for r in queued} == want, queued
    got = by_receiver(stack.mts(len(want)))
    assert sorted(got) == sorted(want), got
    for msisdn, short_code, _, _, text in queued:
        mt = got[msisdn]
        assert (mt.sender, mt.text, mt.parts) == (short_code, text, 1), (mt, text)
    states = "SELECT state, count(*) FROM payremind.replies GROUP BY 1"
    wait(lambda: db.q(states) == [("delivered", len(want))], "Kannel's DLRs to deliver the replies",
         lambda: db.q(states))
    return {r[0]: r[4] for r in queued}


def test_arret_from_a_phone_opts_out_cancels_and_is_confirmed_in_french_from_the_short_code_written_to(ctx):
    db = ctx.db
    queued_a = [parked_reminder(db, A, "queued", step) for step in (0, 1)]
    queued_b = parked_reminder(db, B, "queued")
    sent_b = parked_reminder(db, B, "sent")
    other = parked_reminder(db, C, "queued")
    s = Stack(ctx)
    # Lower case with the accent, as typed on a phone: as UCS-2 (ê is not GSM-7) to 27022, as text to 270282.
    s.mo(A, "27022", "arrêt", ucs2=True)
    s.mo(B, "270282", "arrêt")
    texts = assert_replies_went_out(s, {A: ("27022", "opt_out", "fr"), B: ("270282", "opt_out", "fr")})
    for text in texts.values():
        assert "textez RETOUR" in text and "1 877 322-1414" in text, text
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs ORDER BY msisdn") == [(B, "keyword"), (A, "keyword")]
    assert db.q("SELECT gateway, msisdn, short_code, text, keyword, action FROM payremind.inbound_messages "
                "ORDER BY msisdn") == [("kannel", B, "270282", "arrêt", "ARRET", "opt_out"),
                                       ("kannel", A, "27022", "arrêt", "ARRET", "opt_out")]
    state = "SELECT state, link_token, next_attempt_at FROM payremind.reminders WHERE id = %s"
    for rid in queued_a + [queued_b]:
        assert db.q(state, rid) == [("cancelled", None, None)], rid
    assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", sent_b) == "sent"
    assert db.q(state, other)[0][:2] == ("queued", "t" * 22), "another number's reminder is untouched"
    log = s.log()
    assert A not in log and B not in log, "numbers are masked in the log"
    assert KEY not in log, "the key Kannel puts in the query is never logged"


def test_help_and_aide_are_answered_in_their_language_from_the_short_code_written_to(ctx):
    db = ctx.db
    s = Stack(ctx)
    s.mo(A, "270282", "help")
    s.mo(B, "27022", " Aide ")
    s.mo(C, "27022", "aide", ucs2=True)
    texts = assert_replies_went_out(s, {A: ("270282", "help", "en"), B: ("27022", "help", "fr"),
                                        C: ("27022", "help", "fr")})
    assert "Reply STOP" in texts[A] and "1-877-322-1414" in texts[A], texts[A]
    for msisdn in (B, C):
        assert "Textez ARRET" in texts[msisdn] and "1 877 322-1414" in texts[msisdn], texts[msisdn]
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0


def test_kannels_own_dlrs_deliver_every_reminder_of_a_batch(ctx):
    db = ctx.db
    numbers = [f"+1514555{i:04d}" for i in range(20)]
    for i, n in enumerate(numbers):
        db.add_due(f"KB-{i}", n, language="fr" if i % 2 else "en")
    s = Stack(ctx)
    delivered = "SELECT count(*) FROM payremind.reminders WHERE state = 'delivered' AND delivered_at IS NOT NULL"
    wait(lambda: db.one(delivered) == 20, "20 reminders delivered by Kannel's DLRs", db.states)
    assert db.states() == {"delivered": 20}
    got = by_receiver(s.mts(20))
    assert sorted(got) == numbers and {m.sender for m in got.values()} == {"27022"}, got
    # Both of Kannel's reports (8 = SMSC ack, 1 = delivered) for each reminder, by its id; in whichever order
    # they came, and whether or not the send had been recorded yet, the reminder ends delivered.
    events = db.q("SELECT r.msisdn, e.gateway, e.raw_status, e.status FROM payremind.dlr_events e "
                  "JOIN payremind.reminders r ON r.id = e.reminder_id ORDER BY 1, 3")
    assert events == [e for n in numbers for e in ((n, "kannel", "1", "delivered"), (n, "kannel", "8", "smsc_ack"))], \
        events
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE link_token IS NOT NULL") == 0


def test_start_and_retour_opt_back_in_and_the_parked_reminder_goes_out(ctx):
    db = ctx.db
    db.add_due("KS-1", A, language="en", next_at=None)  # parked while opted out
    db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES (%s, 'keyword'), (%s, 'keyword')", A, B)
    s = Stack(ctx)
    s.mo(A, "270282", "Start")
    s.mo(B, "27022", "retour", ucs2=True)
    queued = wait_replies(db, 2)
    assert [r[:4] for r in queued] == [(B, "27022", "opt_in", "fr"), (A, "270282", "opt_in", "en")], queued
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    # Two confirmations, and A's woken reminder from the configured short code.
    got = s.mts(3)
    confirmations = {(m.sender, m.receiver, m.text) for m in got if "pay.aro.ca" not in m.text}
    assert confirmations == {(r[1], r[0], r[4]) for r in queued}, (got, queued)
    assert "Textez ARRET" in queued[0][4] and "Reply STOP" in queued[1][4], queued
    [reminder] = [m for m in got if "pay.aro.ca" in m.text]
    assert (reminder.sender, reminder.receiver) == ("27022", A), reminder
    wait(lambda: db.states() == {"delivered": 1}, "A's reminder delivered", db.states)


harness.main(globals())
