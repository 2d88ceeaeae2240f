"""The webhook listener of a running payremindd (SPEC §6): inbound keywords from json, kannel and twilio,
delivery reports, authentication, idempotency, malformed requests, /healthz and /metrics."""

import base64
import hashlib
import hmac
import http.client
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import kannel  # noqa: E402
from harness import write_conf  # noqa: E402

KEY = "k3y-for-webhooks"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "twilio-auth-token-0123456789"
A, B, C = "+15145550101", "+15145550102", "+14385550103"
METRIC_LINE = re.compile(r'^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z]+="[^"]*"\})? -?[0-9.]+(e[+-]?[0-9]+)?)$')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener:
    """A payremindd in normal mode with its listener on a free port, and an HTTP client for it. Unless
    told otherwise it sends through a sandbox gateway (self.gw), so keyword replies really go out."""

    def __init__(self, ctx, key=KEY, twilio=False, gateway_url=None, wait=10, port=None, gateway=None):
        self.ctx = ctx
        self.gw = ctx.sandbox() if gateway_url is None and not twilio and not gateway else None
        gateway_url = gateway_url or (self.gw.url if self.gw else "http://127.0.0.1:9/sms")
        self.port = port or free_port()
        self.public_url = f"http://127.0.0.1:{self.port}"
        gw = dict(gateway or {})
        if twilio:
            gw = dict(dialect="twilio", username=TWILIO_SID,
                      secret_file=harness.write_secret(ctx.tmp, "twilio-token", TWILIO_TOKEN))
        self.conf = write_conf(ctx.tmp, ctx.db, gateway_url, gateway=gw)
        listen = dict(port=self.port, public_url=self.public_url + "/")
        if key is not None:
            self.key_file = harness.write_secret(ctx.tmp, "listen-key", key)
            listen["secret_file"] = self.key_file
        harness.set_listen(self.conf, **listen)
        self.proc = ctx.spawn(harness.daemon_cmd(self.conf))
        self.up = self.wait_healthy(wait)

    def wait_healthy(self, timeout):
        end = time.time() + timeout
        while time.time() < end and self.proc.poll() is None:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def request(self, method, path, body=None, headers=None, chunked=False):
        """(status, headers dict, body text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            hdrs = dict(headers or {})
            if chunked:
                conn.request(method, path, body=iter([body.encode()]), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()

    def json(self, path, obj_or_text, key=KEY):
        body = obj_or_text if isinstance(obj_or_text, (str, bytes)) else __import__("json").dumps(obj_or_text)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-Payremind-Key"] = key
        return self.request("POST", path, body, headers)

    def kannel(self, path, params, key=KEY):
        q = dict(params)
        if key is not None:
            q["key"] = key
        return self.request("GET", path + "?" + urllib.parse.urlencode(q))

    def twilio(self, path, params, token=TWILIO_TOKEN, signature=None, body_params=None):
        """POST a Twilio form signed with token over public_url + path (signature overrides it; body_params
        replaces what is sent after signing, for tampering)."""
        sig = signature if signature is not None else twilio_signature(token, self.public_url + path, params)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if sig is not False:
            headers["X-Twilio-Signature"] = sig
        return self.request("POST", path, urllib.parse.urlencode(body_params or params), headers)

    def log(self):
        with open(self.proc.log_path) as f:
            return f.read()

    def metrics(self):
        status, headers, text = self.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain"), (status, headers)
        samples = {}
        for line in text.splitlines():
            assert METRIC_LINE.match(line), line
            if not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples


def twilio_signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def listener(ctx, **kw):
    ln = Listener(ctx, **kw)
    assert ln.up, f"payremindd did not answer /healthz:\n{ln.log()}"
    return ln


def add_reminder(db, msisdn, state, gateway_message_id=None, step=0, ref=None):
    """A reminder in state (its due row parked so that the daemon leaves it alone); returns its id."""
    due = db.add_due(ref or f"L-{uuid.uuid4().hex[:8]}", msisdn)
    db.q("UPDATE payremind.due_accounts SET next_at = NULL WHERE id = %s", due)
    token = "t" * 22 if state in ("queued", "sending") else None
    sent = "now()" if state in ("sent", "unknown") else "NULL"
    return str(db.one(
        "INSERT INTO payremind.reminders (due_account_id, step, msisdn, short_code, language, state, attempts,"
        f" next_attempt_at, gateway_message_id, link_token, sent_at) VALUES (%s, %s, %s, '27022', 'fr', %s, 1,"
        f" CASE WHEN %s = 'queued' THEN now() + interval '1 hour' END, %s, %s, {sent}) RETURNING id",
        due, step, msisdn, state, state, gateway_message_id, token))


def reminder(db, rid, *cols):
    row = db.q(f"SELECT {', '.join(cols)} FROM payremind.reminders WHERE id = %s", rid)[0]
    return row if len(cols) > 1 else row[0]


def replies(db):
    """The replies queued, oldest first (what the listener decided; the daemon sends them)."""
    return db.q("SELECT msisdn, short_code, kind, language, text FROM payremind.replies ORDER BY created_at")


def snapshot(db):
    """Everything the listener may change, to prove a refused request changed nothing (the columns the
    daemon's sending of replies changes are left out)."""
    return [db.q(f"SELECT * FROM payremind.{t} ORDER BY 1") for t in ("inbound_messages", "opt_outs", "dlr_events")] + \
        [db.q("SELECT id, msisdn, short_code, kind, text FROM payremind.replies ORDER BY id"),
         db.q("SELECT id, state, last_error, dlr_status, link_token FROM payremind.reminders ORDER BY id")]


def sent_replies(ln, n):
    """The first n SMS the sandbox took, once it has them: (from, to, text)."""
    harness.wait_until(lambda: len(ln.gw.accepted()) >= n, what=f"{n} SMS at the gateway")
    return [(r["from"], r["to"], r["text"]) for r in ln.gw.accepted()[:n]]


def inbound(n=[0]):
    n[0] += 1
    return f"mo-{os.getpid()}-{n[0]}"


# ---- inbound keywords ----

def test_json_stop_opts_out_cancels_queued_reminders_and_queues_english_reply(ctx):
    db = ctx.db
    queued = add_reminder(db, A, "queued")
    sent = add_reminder(db, A, "sent")
    other = add_reminder(db, B, "queued")
    ln = listener(ctx)
    msg = {"from": A, "to": "27022", "text": "STOP", "id": "m-1"}
    status, _, body = ln.json("/v1/inbound/json", msg)
    assert (status, body.strip()) == (200, "ok"), (status, body)
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs") == [(A, "keyword")]
    assert reminder(db, queued, "state", "link_token", "next_attempt_at") == ("cancelled", None, None)
    assert reminder(db, sent, "state") == "sent"
    assert reminder(db, other, "state", "link_token") == ("queued", "t" * 22)
    [(to, code, kind, lang, text)] = replies(db)
    assert (to, code, kind, lang) == (A, "27022", "opt_out", "en")
    assert "START" in text and "ARO" in text and "1-877-322-1414" in text and len(text) <= 160
    # The daemon sends the confirmation, to the opted-out number, from the short code written to.
    assert sent_replies(ln, 1) == [("27022", A, text)]
    assert db.q("SELECT gateway, gateway_id, msisdn, short_code, text, keyword, action "
                "FROM payremind.inbound_messages") == [("json", "m-1", A, "27022", "STOP", "STOP", "opt_out")]
    # The same gateway id again: 200, nothing new.
    before = snapshot(db)
    status, _, body = ln.json("/v1/inbound/json", msg)
    assert (status, body.strip()) == (200, "duplicate")
    assert snapshot(db) == before
    log = ln.log()
    assert A not in log and "+1514***0101" in log, "numbers are masked in the log"


def test_kannel_arret_with_plus_spaces_replies_in_french_from_the_short_code_written_to(ctx):
    db = ctx.db
    queued = add_reminder(db, A, "queued")
    ln = listener(ctx)
    # What Kannel's get-url sends: %p without '+', the text with spaces as '+'.
    status, _, body = ln.request(
        "GET", f"/v1/inbound/kannel?from=15145550101&to=270282&text=+ARR%C3%8AT+&id=kannel-1&key={KEY}")
    assert (status, body) == (200, ""), (status, body)
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs") == [(A, "keyword")]
    assert reminder(db, queued, "state") == "cancelled"
    [(to, code, kind, lang, text)] = replies(db)
    assert (to, code, kind, lang) == (A, "270282", "opt_out", "fr")
    assert "RETOUR" in text and "1 877 322-1414" in text  # French notation (OQLF)
    assert sent_replies(ln, 1) == [("270282", A, text)]
    assert db.one("SELECT text FROM payremind.inbound_messages") == " ARRÊT "
    # The key may also come as the header.
    status, _, _ = ln.request("GET", "/v1/inbound/kannel?from=15145550102&to=27022&text=aide&id=kannel-2",
                              headers={"X-Payremind-Key": KEY})
    assert status == 200
    assert replies(db)[1][:4] == (B, "27022", "help", "fr")


def test_help_aide_info_reply_in_their_language_and_opt_nobody_out(ctx):
    db = ctx.db
    ln = listener(ctx, twilio=True)
    assert ln.json("/v1/inbound/json", {"from": A, "to": "27022", "text": "help", "id": inbound()})[0] == 200
    assert ln.kannel("/v1/inbound/kannel", {"from": B, "to": "270282", "text": "Aide", "id": inbound()})[0] == 200
    tw = {"From": C, "To": "27022", "Body": "INFO ", "MessageSid": "SM" + "1" * 32, "NumMedia": "0"}
    assert ln.twilio("/v1/inbound/twilio", tw)[0] == 200
    got = [r[:4] for r in replies(db)]
    assert got == [(A, "27022", "help", "en"), (B, "270282", "help", "fr"), (C, "27022", "help", "en")], got
    for lang, text in ((r[3], r[4]) for r in replies(db)):
        number = "1 877 322-1414" if lang == "fr" else "1-877-322-1414"
        assert "ARO" in text and number in text and ("STOP" in text or "ARRET" in text), text
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0


def test_start_and_retour_opt_back_in_wake_parked_rows_and_confirm(ctx):
    db = ctx.db
    due = db.add_due("W-1", A)
    db.q("UPDATE payremind.due_accounts SET next_at = NULL WHERE id = %s", due)  # parked: opted out
    db.q("INSERT INTO payremind.opt_outs (msisdn, source) VALUES (%s, 'operator'), (%s, 'keyword')", A, B)
    ln = listener(ctx)
    assert ln.json("/v1/inbound/json", {"from": A, "to": "27022", "text": "Start", "id": inbound()})[0] == 200
    assert ln.json("/v1/inbound/json", {"from": B, "to": "270282", "text": "retour", "id": inbound()})[0] == 200
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    assert [r[:4] for r in replies(db)] == [(A, "27022", "opt_in", "en"), (B, "270282", "opt_in", "fr")]
    # The opt-out trigger of 001 woke the parked row: the daemon now sends its reminder.
    reminder_to_a = lambda: [r for r in ln.gw.accepted() if r["to"] == A and "pay.aro.ca" in r["text"]]  # noqa
    harness.wait_until(lambda: len(reminder_to_a()) == 1, what="the woken row's reminder")


def test_other_text_is_stored_and_counted_without_reply(ctx):
    db = ctx.db
    ln = listener(ctx)
    before = ln.metrics()
    status, _, _ = ln.json("/v1/inbound/json", {"from": A, "to": "27022", "text": "J'ai payé hier", "id": "x1"})
    assert status == 200
    assert db.q("SELECT text, keyword, action FROM payremind.inbound_messages") == [("J'ai payé hier", None, "none")]
    assert replies(db) == [] and db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    after = ln.metrics()
    assert after['payremind_inbound_total{keyword="other"}'] == before['payremind_inbound_total{keyword="other"}'] + 1
    assert "payé" not in ln.log(), "message texts are never logged"


def test_inbound_to_another_short_code_is_refused_loudly(ctx):
    db = ctx.db
    ln = listener(ctx)
    before = snapshot(db)
    status, _, body = ln.json("/v1/inbound/json", {"from": A, "to": "12345", "text": "STOP", "id": "z1"})
    assert status == 400 and "short code" in body, (status, body)
    status, _, _ = ln.kannel("/v1/inbound/kannel", {"from": A, "to": "+15145550000", "text": "STOP", "id": "z2"})
    assert status == 400
    assert snapshot(db) == before
    assert re.search(r"<3>payremindd: listener: .*REFUSED inbound id=z1 to short code 12345", ln.log())


# ---- Twilio signatures ----

def test_twilio_inbound_needs_a_valid_signature_and_answers_empty_twiml(ctx):
    db = ctx.db
    queued = add_reminder(db, A, "queued")
    ln = listener(ctx, twilio=True)
    msg = {"From": A, "To": "27022", "Body": "stop", "MessageSid": "SM" + "a" * 32, "AccountSid": TWILIO_SID}
    before = snapshot(db)
    refused = [
        ln.twilio("/v1/inbound/twilio", msg, token="not-the-token"),
        ln.twilio("/v1/inbound/twilio", msg, signature=False),
        ln.twilio("/v1/inbound/twilio", msg, signature=""),
        ln.twilio("/v1/inbound/twilio", msg, body_params=dict(msg, From=B)),
        ln.twilio("/v1/inbound/twilio", msg, body_params=dict(msg, Extra="1")),
        ln.twilio("/v1/inbound/twilio?x=1", msg, signature=twilio_signature(TWILIO_TOKEN, ln.public_url +
                                                                             "/v1/inbound/twilio", msg)),
    ]
    assert [r[0] for r in refused] == [403] * len(refused), refused
    assert snapshot(db) == before
    status, headers, body = ln.twilio("/v1/inbound/twilio", msg)
    assert status == 200 and "<Response/>" in body and headers["content-type"].startswith("text/xml"), body
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs") == [(A, "keyword")]
    assert reminder(db, queued, "state") == "cancelled"
    assert [r[:4] for r in replies(db)] == [(A, "27022", "opt_out", "en")]
    # A query string Twilio was given is part of what it signs.
    msg2 = dict(msg, MessageSid="SM" + "b" * 32, From=B, Body="HELP")
    path = "/v1/inbound/twilio?site=mtl"
    assert ln.twilio(path, msg2)[0] == 200
    assert len(replies(db)) == 2


def test_twilio_endpoints_refuse_everything_when_the_dialect_is_not_twilio(ctx):
    db = ctx.db
    ln = listener(ctx)
    msg = {"From": A, "To": "27022", "Body": "stop", "MessageSid": "SM" + "c" * 32}
    assert ln.twilio("/v1/inbound/twilio", msg, token="")[0] == 403
    assert ln.twilio("/v1/dlr/twilio", {"MessageSid": "SM1", "MessageStatus": "delivered"}, token="")[0] == 403
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    assert "Twilio webhooks need gateway.dialect" in ln.log()


# ---- delivery reports ----

def test_json_dlrs_move_reminders_once_and_unknown_references_get_404(ctx):
    db = ctx.db
    r1, r2, r3 = (add_reminder(db, m, "sent") for m in (A, B, C))
    ln = listener(ctx)
    post = lambda ref, status, **kw: ln.json("/v1/dlr/json", dict(id="gw-" + ref[:8], reference=ref,  # noqa: E731
                                                                   status=status, **kw))
    assert post(r1, "buffered")[:3:2] == (200, "noted\n")
    assert reminder(db, r1, "state", "dlr_status") == ("sent", "buffered")
    assert post(r1, "delivered")[:3:2] == (200, "delivered\n")
    assert reminder(db, r1, "state", "dlr_status") == ("delivered", "delivered")
    assert reminder(db, r1, "delivered_at") is not None
    before = snapshot(db)
    assert post(r1, "delivered")[:3:2] == (200, "duplicate\n")
    assert post(r1, "failed")[:3:2] == (200, "kept\n"), "a delivered reminder is not moved again"
    assert reminder(db, r1, "state") == "delivered"
    assert post(r2, "failed", code="E42")[:3:2] == (200, "failed\n")
    assert reminder(db, r2, "state", "last_error") == ("failed", "dlr failed code=E42")
    assert post(r3, "undelivered")[:3:2] == (200, "failed\n")
    assert db.one("SELECT count(*) FROM payremind.dlr_events WHERE reminder_id = %s", r1) == 3
    # Unknown or not-ours references: 404, nothing recorded.
    before = snapshot(db)
    assert post(str(uuid.uuid4()), "delivered")[0] == 404
    assert post("not-a-uuid", "delivered")[0] == 404
    assert snapshot(db) == before


def test_kannel_dlrs_map_report_types(ctx):
    db = ctx.db
    r1, r2, r3 = (add_reminder(db, m, "sent") for m in (A, B, C))
    ln = listener(ctx)
    get = lambda ref, st, **kw: ln.kannel("/v1/dlr/kannel", dict(ref=ref, status=st, smsc_id="fake"), **kw)  # noqa
    assert get(r1, 8)[0] == 200 and reminder(db, r1, "state", "dlr_status") == ("sent", "smsc_ack")
    assert get(r1, 1)[0] == 200 and reminder(db, r1, "state") == "delivered"
    assert get(r1, 1)[2] == "duplicate\n"
    assert get(r2, 4)[0] == 200 and reminder(db, r2, "state", "dlr_status") == ("sent", "buffered")
    assert get(r2, 16)[0] == 200
    assert reminder(db, r2, "state", "last_error") == ("failed", "dlr smsc_reject code=16")
    assert get(r3, 2)[0] == 200 and reminder(db, r3, "state", "last_error") == ("failed", "dlr undelivered code=2")
    before = snapshot(db)
    assert get(str(uuid.uuid4()), 1)[0] == 404
    assert get(r1, 3)[0] == 400
    assert get(r1, 2, key="wrong")[0] == 401 and get(r1, 2, key=None)[0] == 401
    assert snapshot(db) == before


def test_twilio_dlrs_by_message_sid_and_21610_opts_the_number_out(ctx):
    db = ctx.db
    s1, s2, s3 = ("SM" + c * 32 for c in "123")
    r1 = add_reminder(db, A, "sent", gateway_message_id=s1)
    r2 = add_reminder(db, B, "sent", gateway_message_id=s2)
    r3 = add_reminder(db, C, "unknown", gateway_message_id=s3)
    c_queued = add_reminder(db, C, "queued", step=1)
    ln = listener(ctx, twilio=True)
    dlr = lambda sid, st, **kw: ln.twilio("/v1/dlr/twilio", dict(MessageSid=sid, MessageStatus=st,  # noqa: E731
                                                               AccountSid=TWILIO_SID, **kw))
    before = snapshot(db)
    forged = ln.twilio("/v1/dlr/twilio", dict(MessageSid=s1, MessageStatus="delivered"), token="forged")
    assert forged[0] == 403 and snapshot(db) == before
    assert dlr(s1, "delivered")[:3:2] == (200, "delivered\n")
    assert reminder(db, r1, "state") == "delivered"
    assert dlr(s1, "sent")[2] == "kept\n"
    assert dlr(s2, "undelivered", ErrorCode="30003")[0] == 200
    assert reminder(db, r2, "state", "last_error") == ("failed", "dlr undelivered code=30003")
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    assert dlr(s3, "failed", ErrorCode="21610")[0] == 200
    assert reminder(db, r3, "state") == "failed"
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs") == [(C, "gateway")]
    assert reminder(db, c_queued, "state", "link_token") == ("cancelled", None)
    assert dlr("SM" + "9" * 32, "delivered")[0] == 404


def test_twilio_dlrs_find_the_reminder_named_in_the_callback_url(ctx):
    db = ctx.db
    sid = "SM" + "4" * 32
    rid = add_reminder(db, A, "sent", gateway_message_id=sid)
    ln = listener(ctx, twilio=True)
    # The StatusCallback the daemon gives Twilio names the reminder; the signature covers that URL.
    path = f"/v1/dlr/twilio?ref={rid}"
    status, _, body = ln.twilio(path, dict(MessageSid=sid, MessageStatus="delivered", AccountSid=TWILIO_SID))
    assert (status, body) == (200, "delivered\n")
    assert reminder(db, rid, "state") == "delivered"
    assert db.one("SELECT message_ref FROM payremind.dlr_events") == str(rid)
    # A reference to no reminder is unknown, whatever the sid.
    other = "00000000-0000-4000-8000-000000000000"
    status = ln.twilio(f"/v1/dlr/twilio?ref={other}", dict(MessageSid=sid, MessageStatus="failed",
                                                          AccountSid=TWILIO_SID))[0]
    assert status == 404


def test_a_report_arriving_while_sending_applies_when_the_send_is_recorded(ctx):
    db = ctx.db
    r1 = add_reminder(db, A, "sending")
    r2 = add_reminder(db, B, "sending")
    ln = listener(ctx)
    assert ln.json("/v1/dlr/json", {"id": "g1", "reference": r1, "status": "delivered"})[2] == "deferred\n"
    assert ln.kannel("/v1/dlr/kannel", {"ref": r2, "status": 16})[2] == "deferred\n"
    assert reminder(db, r1, "state") == "sending" and reminder(db, r2, "state") == "sending"
    # What the scheduler's record does when the gateway's answer comes back.
    db.q("UPDATE payremind.reminders SET state = 'sent', sent_at = now(), lease_owner = NULL WHERE id IN (%s, %s)",
         r1, r2)
    assert reminder(db, r1, "state", "link_token") == ("delivered", None)
    assert reminder(db, r1, "delivered_at") is not None
    assert reminder(db, r2, "state", "last_error", "link_token") == ("failed", "dlr smsc_reject code=16", None)


def test_sent_reminder_then_its_dlr_end_to_end(ctx):
    db = ctx.db
    db.add_due("E-1", A)
    ln = listener(ctx)
    harness.wait_until(lambda: db.states() == {"sent": 1}, what="the reminder to be sent")
    rid = db.one("SELECT id FROM payremind.reminders")
    [req] = ln.gw.accepted()
    assert req["reference"] == str(rid)
    assert ln.json("/v1/dlr/json", {"id": "x", "reference": str(rid), "status": "delivered"})[0] == 200
    assert db.states() == {"delivered": 1}


def test_dlr_for_a_keyword_reply_moves_the_reply(ctx):
    db = ctx.db
    ln = listener(ctx)
    assert ln.json("/v1/inbound/json", {"from": A, "to": "27022", "text": "HELP", "id": inbound()})[0] == 200
    reply_id = str(db.one("SELECT id FROM payremind.replies"))
    harness.wait_until(lambda: db.one("SELECT state FROM payremind.replies") == "sent", what="the reply sent")
    assert ln.gw.accepted()[0]["reference"] == reply_id
    status, _, body = ln.json("/v1/dlr/json", {"id": "g9", "reference": reply_id, "status": "delivered"})
    assert (status, body) == (200, "delivered\n")
    assert db.one("SELECT state FROM payremind.replies") == "delivered"
    assert db.one("SELECT count(*) FROM payremind.dlr_events WHERE reply_id = %s", reply_id) == 1


def test_real_kannel_brings_its_dlrs_and_replies_from_phones_to_the_listener(ctx):
    if not kannel.available():
        print("  (Kannel is not installed: this case checks nothing)", flush=True)
        return
    db = ctx.db
    port = free_port()
    k = kannel.Kannel(ctx.tmp, get_url=f"http://127.0.0.1:{port}/v1/inbound/kannel"
                                       f"?from=%p&to=%P&text=%a&id=%I&key={KEY}")
    ctx.cleanups.append(k.stop)
    db.add_due("KL-1", A)
    listener(ctx, port=port, gateway=k.gateway())
    # The MT goes out through smsbox; bearerbox's DLRs (8, then 1) come back with ref and key.
    # They may arrive in either order: an SMSC ack after the delivery changes nothing.
    events = "SELECT gateway, status FROM payremind.dlr_events ORDER BY status"
    harness.wait_until(lambda: len(db.q(events)) == 2, timeout=30, what="Kannel's 2 DLRs")
    assert db.q(events) == [("kannel", "delivered"), ("kannel", "smsc_ack")]
    # The DLRs may beat the daemon's record of the send: the report then applies when it lands.
    harness.wait_until(lambda: db.states() == {"delivered": 1}, timeout=20, what="the reminder delivered")
    # A phone's ARRÊT, through the sms-service get-url.
    k.inject_mo(B, "270282", "Arrêt")
    harness.wait_until(lambda: len(replies(db)) == 1, timeout=20, what="the MO at the listener")
    assert db.q("SELECT msisdn, source FROM payremind.opt_outs") == [(B, "keyword")]
    assert replies(db)[0][:4] == (B, "270282", "opt_out", "fr")


# ---- authentication, malformed requests, concurrency ----

def test_webhooks_need_the_key_and_none_are_accepted_without_one_configured(ctx):
    db = ctx.db
    ln = listener(ctx)
    msg = {"from": A, "to": "27022", "text": "STOP", "id": "k1"}
    for key in (None, "", "wrong", KEY + "x"):
        assert ln.json("/v1/inbound/json", msg, key=key)[0] == 401, key
        assert ln.kannel("/v1/inbound/kannel", msg, key=key)[0] == 401, key
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    ctx2 = harness.Ctx("listener_nokey")
    try:
        bare = listener(ctx2, key=None)
        assert bare.json("/v1/inbound/json", msg, key="anything")[0] == 401
        assert bare.kannel("/v1/dlr/kannel", {"ref": str(uuid.uuid4()), "status": 1}, key="")[0] == 401
        assert "listen.secret_file is not set" in bare.log()
        assert ctx2.db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    finally:
        ctx2.close(True)


def test_malformed_requests_get_a_4xx_with_a_reason_and_never_stall(ctx):
    db = ctx.db
    ln = listener(ctx)
    key = {"X-Payremind-Key": KEY}
    big = "{\"text\":\"" + "a" * 20000 + "\"}"
    cases = [
        (ln.request("POST", "/v1/inbound/json", big, key), 413, "body over"),
        (ln.request("POST", "/v1/inbound/json", big, key, chunked=True), 413, "body over"),
        (ln.request("POST", "/v1/inbound/json", "{\"from\":", key), 400, "bad JSON"),
        (ln.request("POST", "/v1/inbound/json", "[]", key), 400, "expected an object"),
        (ln.json("/v1/inbound/json", {"from": A, "to": "27022", "id": "m"}), 400, "missing field: text"),
        (ln.json("/v1/inbound/json", {"from": A, "to": "27022", "text": None, "id": "m"}), 400, "field text: must be a string"),
        (ln.json("/v1/inbound/json", {"from": "+4420", "to": "27022", "text": "x", "id": "m"}), 400, "field from"),
        (ln.json("/v1/dlr/json", {"id": "g", "reference": str(uuid.uuid4())}), 400, "missing field: status"),
        (ln.json("/v1/dlr/json", {"id": "g", "reference": "r", "status": "DELIVERED"}), 400, "field status"),
        (ln.request("GET", "/v1/inbound/json", None, key), 405, "not allowed"),
        (ln.request("POST", "/v1/dlr/kannel", "x", key), 405, "not allowed"),
        (ln.request("DELETE", "/healthz"), 405, "not allowed"),
        (ln.request("GET", "/v1/inbound/kannel?text=%zz&key=" + KEY), 400, "malformed query"),
        (ln.request("GET", "/nope"), 404, "not found"),
        (ln.request("GET", "/v1/inbound/json/"), 404, "not found"),
    ]
    for (status, headers, body), want, reason in cases:
        assert status == want and reason in body, (status, body, want, reason)
        if want == 405:
            assert headers["allow"] in ("POST", "GET", "GET, HEAD"), headers
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    # A client that sends half a request and stops does not hold the others up.
    with socket.create_connection(("127.0.0.1", ln.port)) as s:
        s.sendall(b"POST /v1/inbound/json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"fr")
        t0 = time.time()
        assert ln.request("GET", "/healthz")[0] == 200
        assert time.time() - t0 < 5
    assert ln.request("HEAD", "/healthz")[0] == 200


def test_concurrent_replays_of_one_message_record_it_once(ctx):
    db = ctx.db
    ln = listener(ctx)
    msg = {"from": A, "to": "27022", "text": "STOP", "id": "same-id"}
    results = []

    def post():
        results.append(ln.json("/v1/inbound/json", msg)[0])
    threads = [threading.Thread(target=post) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 16, results
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 1
    assert len(replies(db)) == 1


def test_healthz_and_metrics_report_queue_depth_opt_outs_and_counters(ctx):
    db = ctx.db
    add_reminder(db, A, "queued")
    add_reminder(db, B, "sent")
    ln = listener(ctx)
    status, headers, body = ln.request("GET", "/healthz")
    assert (status, body.strip()) == (200, "ok")
    assert ln.json("/v1/inbound/json", {"from": C, "to": "27022", "text": "Stop", "id": inbound()})[0] == 200
    harness.wait_until(lambda: db.one("SELECT state FROM payremind.replies") == "sent", what="the reply sent")
    m = ln.metrics()
    assert m['payremind_reminders{state="queued"}'] == 1 and m['payremind_reminders{state="sent"}'] == 1
    assert m['payremind_reminders{state="delivered"}'] == 0
    assert m['payremind_opt_outs{source="keyword"}'] == 1
    assert m['payremind_replies{state="sent"}'] == 1 and m['payremind_replies{state="queued"}'] == 0
    # The scheduler's figures: the reply went through the gateway.
    assert m['payremind_sends_total{outcome="ok"}'] >= 1 and m["payremind_gateway_latency_seconds_count"] >= 1
    assert m['payremind_inbound_total{keyword="stop"}'] == 1
    assert m["payremind_database_up"] == 1
    assert m['payremind_gateway_latency_seconds_bucket{le="+Inf"}'] == m["payremind_gateway_latency_seconds_count"]
    for outcome in ("ok", "tempfail", "permfail", "ambiguous", "config"):
        assert f'payremind_sends_total{{outcome="{outcome}"}}' in m
    for status in ("delivered", "undelivered", "failed", "buffered", "accepted"):
        assert f'payremind_dlrs_total{{status="{status}"}}' in m
    assert m['payremind_webhook_responses_total{code="200"}'] >= 2


def test_listener_reconnects_and_answers_503_while_the_database_is_away(ctx):
    db = ctx.db
    ln = listener(ctx)
    kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'payremindd-listener'"
    assert db.one(kill) is True
    assert ln.request("GET", "/healthz")[0] == 200, "a broken connection is replaced at once"
    admin = db.connect("postgres")
    admin.autocommit = True
    allow = lambda yes: admin.cursor().execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS {yes}')  # noqa: E731
    allow("false")
    try:
        db.one(kill)
        assert ln.request("GET", "/healthz")[:3:2] == (503, "database unavailable\n")
        msg = {"from": A, "to": "27022", "text": "STOP", "id": "while-away"}
        assert ln.json("/v1/inbound/json", msg)[0] == 503
        assert ln.metrics()["payremind_database_up"] == 0
    finally:
        allow("true")
        admin.close()
    harness.wait_until(lambda: ln.request("GET", "/healthz")[0] == 200, what="/healthz back to 200")
    assert ln.json("/v1/inbound/json", msg)[0] == 200
    assert db.one("SELECT count(*) FROM payremind.opt_outs") == 1


def test_reload_swaps_the_webhook_key(ctx):
    ln = listener(ctx)
    msg = {"from": A, "to": "27022", "text": "hello", "id": inbound()}
    assert ln.json("/v1/inbound/json", msg)[0] == 200
    harness.write_secret(ctx.tmp, "listen-key", "the-new-key")
    ln.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: ln.json("/v1/inbound/json", dict(msg, id=inbound()), key="the-new-key")[0] == 200,
                       what="the new key to be accepted")
    assert ln.json("/v1/inbound/json", dict(msg, id=inbound()))[0] == 401


if __name__ == "__main__":
    harness.main(globals())
