"""The kannel dialect against REAL Kannel 1.4.5 (bearerbox + smsbox + fakesmsc; see kannel.py):
accents intact, DLR callbacks carrying the reminder id, Kannel's error replies classified, volume."""

import collections
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import kannel  # noqa: E402
from harness import run_once, summary, write_conf  # noqa: E402

BASE_URL = "https://pay.aro.ca/p/"
TOKEN = r"([A-Za-z0-9_-]{22})"
# Every accent ARO writes with (é à ç ê û) and a typographic apostrophe outside Latin-1: UCS-2, 3 parts.
FR = ("ARO: paiement dû à régler, ça presse avant l’échéance: {link} Répondez ARRET. "
      "Aide 1-877-322-1414 (lun-ven, fête exclue)")
EN = "ARO: a payment is due. Pay at {link} Help: 1-877-322-1414. Reply STOP to opt out."  # 1 GSM-7 SMS
TEMPLATES = 'templates = {{ fr = "{}"; en = "{}"; max_segments = 3; }};'.format(FR, EN)


def start_kannel(ctx, service=False, **kw):
    """Kannel, and a listener standing in for the daemon's as listen.public_url (else Kannel would
    call 127.0.0.1:8787); with service, also Kannel's sms-service get-url for replies."""
    assert kannel.available(), "Kannel is not installed: apt-get install kannel kannel-extras"
    listener = CallbackServer()
    ctx.cleanups.append(listener.stop)
    if service:
        kw["get_url"] = listener.url + "/v1/inbound/kannel?from=%p&to=%P&text=%a&id=%I"
    k = kannel.Kannel(ctx.tmp, **kw)
    ctx.cleanups.append(k.stop)
    k.listener = listener
    return k


def kannel_conf(ctx, k, extra="", wrong_password=False, gateway=None, **listen):
    """A daemon config for this Kannel; callbacks go to k.listener (gateway and listen keys may be
    added)."""
    conf = write_conf(ctx.tmp, ctx.db, k.sendsms_url, extra=extra, gateway=k.gateway(wrong_password, **(gateway or {})))
    return harness.set_listen(conf, public_url=k.listener.url + "/", **listen)


def rendered_re(template):
    """The text the daemon renders from template, the link's token captured."""
    head, tail = template.split("{link}")
    return re.compile("^" + re.escape(head + BASE_URL) + TOKEN + re.escape(tail) + "$")


def reminder_of(db, msisdn):
    return db.q("SELECT id::text, state, attempts, next_attempt_at > now(), last_error "
                "FROM payremind.reminders WHERE msisdn = %s", msisdn)[0]


def make_due_again(db):
    """Let a retry waiting for its backoff go now."""
    db.q("UPDATE payremind.reminders SET next_attempt_at = now() - interval '1 s' WHERE state = 'queued'")
    db.q("UPDATE payremind.due_accounts SET next_at = now() - interval '1 s'")


class CallbackServer:
    """A tiny HTTP server standing in for the daemon's listener: records every GET Kannel makes."""

    def __init__(self):
        self.calls = []
        calls = self.calls

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                calls.append(self.path)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # Kannel stopped by the test meanwhile

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # smsbox fires callbacks in bursts

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests(self):
        """(path, {param: value}) of every call."""
        out = []
        for p in list(self.calls):
            u = urllib.parse.urlsplit(p)
            out.append((u.path, dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))))
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_french_accents_and_english_gsm7_arrive_intact_from_the_short_code(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    db.add_due("KF-1", "+15145550101", language="fr")
    db.add_due("KE-1", "+14385550102", language="en")
    conf = kannel_conf(ctx, k, TEMPLATES)
    s = summary(run_once(conf))
    assert s["sent"] == 2, s
    got = {m.receiver: m for m in k.wait_received(2)}
    assert sorted(got) == ["+14385550102", "+15145550101"], got
    fr, en = got["+15145550101"], got["+14385550102"]
    assert fr.sender == "27022" and en.sender == "27022", (fr, en)
    # French: asked as coding=2, so each part is UTF-16BE; joined it is exactly what was rendered.
    assert fr.coding == "ucs-2" and fr.parts == 3, fr
    m = rendered_re(FR).match(fr.text)
    assert m, fr.text
    for ch in "éàçêû’":
        assert ch in fr.text, ch
    # English: plain GSM-7, one SMS, no coding=2 (fakesmsc would say ucs-2).
    assert en.coding == "text" and en.parts == 1 and en.raw[0].split(" ", 3)[2] == "text", en
    m_en = rendered_re(EN).match(en.text)
    assert m_en, en.text
    # The links are the reminders' own tokens (stored only as SHA-256).
    for msisdn, token in (("+15145550101", m.group(1)), ("+14385550102", m_en.group(1))):
        rid = reminder_of(db, msisdn)[0]
        assert db.one("SELECT count(*) FROM payremind.payment_tokens WHERE token_hash = sha256(%s::bytea) "
                      "AND reminder_id = %s", token.encode(), rid) == 1, msisdn
    assert db.states() == {"sent": 2}


def test_default_templates_give_every_way_to_pay_as_concatenated_gsm7(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    db.add_due("KD-1001", "+15145550111", language="en")
    db.add_due("KD-1002", "+15145550112", language="fr")
    conf = kannel_conf(ctx, k)
    assert summary(run_once(conf))["sent"] == 2
    got = {m.receiver: m for m in k.wait_received(2)}
    for mt in got.values():
        assert mt.parts == 2 and mt.coding == "text", mt
        # 8-bit parts with no UTF-16 NULs: Kannel was not asked for UCS-2, and the accents came through.
        assert all("%00" not in raw.split(" data ", 1)[1] for raw in mt.raw), mt.raw
    en, fr = got["+15145550111"].text, got["+15145550112"].text
    assert re.fullmatch(r"ARO: payment due on account KD-1001\. Online: " + re.escape(BASE_URL) + TOKEN +
                        r" By phone: 1-877-322-1414, Mon-Fri, 8 a\.m\. to 8 p\.m\. ET\. Online banking: payee ARO,"
                        r" account number KD-1001\. Text STOP to opt out\.", en), en
    assert re.fullmatch(r"ARO : paiement attendu, dossier KD-1002\. En ligne : " + re.escape(BASE_URL) + TOKEN +
                        r" Par téléphone : 1 877 322-1414, du lun\. au ven\., de 8 h à 20 h \(heure de l'Est\)\."
                        r" Banque en ligne : fournisseur ARO, numéro de compte KD-1002\. Textez ARRET pour ne plus en"
                        r" recevoir\.", fr), fr


def test_dlr_url_brings_the_reminder_id_back(ctx):
    k = start_kannel(ctx)
    listener = k.listener
    db = ctx.db
    msisdns = ["+15145550121", "+15145550122", "+15145550123"]
    for i, n in enumerate(msisdns):
        db.add_due(f"KL-{i}", n, language="fr" if i % 2 else "en")
    conf = kannel_conf(ctx, k, TEMPLATES)
    assert summary(run_once(conf))["sent"] == 3
    ids = {reminder_of(db, n)[0] for n in msisdns}
    # The fake SMSC acks (8) then delivers (1) each one: 2 callbacks per reminder.
    harness.wait_until(lambda: len(listener.requests()) >= 6, timeout=30, what="6 DLR callbacks")
    time.sleep(0.3)  # nothing more should come
    dlrs = listener.requests()
    assert len(dlrs) == 6, dlrs
    assert {path for path, _ in dlrs} == {"/v1/dlr/kannel"}, dlrs
    assert {q["ref"] for _, q in dlrs} == ids, (dlrs, ids)
    for rid in ids:
        # smsbox makes the two calls concurrently: their order is not kept.
        statuses = sorted(q["status"] for _, q in dlrs if q["ref"] == rid)
        assert statuses == ["1", "8"], (rid, statuses)
    assert {q["smsc_id"] for _, q in dlrs} == {"mt"}, dlrs


def test_dlr_url_carries_the_listener_key_intact(ctx):
    # Kannel reads %X in a dlr-url as its own escapes (%A %B %C %D %E %F among them): the key, with
    # bytes that percent-encode to such pairs, must still come back exactly.
    k = start_kannel(ctx)
    secret = "k%C3+&/=é?#\u2019 %A%%F"
    ctx.db.add_due("KK-1", "+15145550171")
    conf = kannel_conf(ctx, k, secret_file=harness.write_secret(ctx.tmp, "listen.key", secret))
    assert summary(run_once(conf))["sent"] == 1
    harness.wait_until(lambda: len(k.listener.calls) >= 2, what="2 DLR callbacks")
    rid = reminder_of(ctx.db, "+15145550171")[0]
    got = k.listener.requests()
    assert [(q["ref"], q["key"]) for _, q in got] == [(rid, secret)] * 2, (got, secret)


def test_wrong_password_pauses_sending_and_counts_no_attempt(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    db.add_due("KP-1", "+15145550131")
    conf = kannel_conf(ctx, k, wrong_password=True)
    p = run_once(conf)
    s = summary(p)
    assert s["sent"] == 0 and s["failed"] == 0, s
    rid, state, attempts, later, err = reminder_of(db, "+15145550131")
    # Queued, the attempt not counted, not before the pause is over.
    assert (state, attempts, later) == ("queued", 0, True), (state, attempts, later)
    assert "Authorization failed" in err, err
    assert "Authorization failed" in p.stderr and "sending paused" in p.stderr, p.stderr
    assert k.password not in p.stderr  # the wrong one contains it; the URL holding it is never logged
    assert k.received() == []
    # Fixed password: the same reminder goes out, once.
    conf = kannel_conf(ctx, k)
    make_due_again(db)
    assert summary(run_once(conf))["sent"] == 1
    (mt,) = k.wait_received(1)
    assert mt.receiver == "+15145550131"
    assert reminder_of(db, "+15145550131")[:3] == (rid, "sent", 1)


def test_not_routable_fails_for_good(ctx):
    # bearerbox takes only 270282 as a sender: 27022 gets 403 "Not routable. Do not try again."
    k = start_kannel(ctx, white_list_sender_regex="^270282$", log_level=1)
    db = ctx.db
    db.add_due("KR-1", "+15145550141")
    conf = kannel_conf(ctx, k)
    s = summary(run_once(conf))
    assert s["failed"] == 1 and s["retried"] == 0, s
    _, state, attempts, _, err = reminder_of(db, "+15145550141")
    assert (state, attempts) == ("failed", 1), (state, attempts)
    assert "403" in err and "Not routable" in err, err
    # Never tried again.
    make_due_again(db)
    s = summary(run_once(conf))
    assert s["sent"] == 0 and s["failed"] == 0 and s["retried"] == 0, s
    assert reminder_of(db, "+15145550141")[2] == 1
    assert k.sendsms_requests() == 1
    assert k.received() == []


def test_queued_for_later_delivery_counts_as_sent_and_arrives_later(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    db.add_due("KQ-1", "+15145550151")
    conf = kannel_conf(ctx, k)
    k.stop_mt_smsc()
    s = summary(run_once(conf))
    assert s["sent"] == 1, s
    _, state, attempts, _, err = reminder_of(db, "+15145550151")
    assert (state, attempts) == ("sent", 1)
    assert "3: Queued for later delivery" in (err or ""), err
    # bearerbox keeps it and delivers once the SMSC link is back.
    k.start_mt_smsc()
    (mt,) = k.wait_received(1)
    assert mt.receiver == "+15145550151"


def test_smsbox_down_is_retried_later(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    db.add_due("KS-1", "+15145550161")
    # A backoff far longer than the test, so "not before its time" holds on a slow machine too.
    conf = kannel_conf(ctx, k, gateway={"backoff_base_ms": 600000, "backoff_cap_ms": 600000})
    k.stop_smsbox()
    s = summary(run_once(conf))
    assert s["retried"] == 1 and s["sent"] == 0, s
    rid, state, attempts, later, _ = reminder_of(db, "+15145550161")
    assert (state, attempts, later) == ("queued", 1, True)
    k.start_smsbox()
    make_due_again(db)
    assert summary(run_once(conf))["sent"] == 1
    (mt,) = k.wait_received(1)
    assert mt.receiver == "+15145550161"
    assert reminder_of(db, "+15145550161")[:3] == (rid, "sent", 2)


def test_200_reminders_each_arrive_exactly_once(ctx):
    k = start_kannel(ctx)
    db = ctx.db
    numbers = [f"+1450555{i:04d}" for i in range(200)]
    for i, n in enumerate(numbers):
        db.add_due(f"KT-{i}", n, language="fr" if i % 2 else "en")
    conf = kannel_conf(ctx, k, TEMPLATES)
    s = summary(run_once(conf, timeout=90))
    assert s["sent"] == 200, s
    got = k.wait_received(200)
    time.sleep(0.3)  # nothing more should come
    got = k.received()
    assert len(got) == 200, len(got)
    assert sorted(m.receiver for m in got) == numbers
    fr, en = rendered_re(FR), rendered_re(EN)
    tokens = set()
    for m in got:
        match = (fr if numbers.index(m.receiver) % 2 else en).match(m.text)
        assert match, m
        tokens.add(match.group(1))
    assert len(tokens) == 200
    assert db.states() == {"sent": 200}
    # And 2 DLRs each, by reminder id.
    ids = {r[0] for r in db.q("SELECT id::text FROM payremind.reminders")}
    harness.wait_until(lambda: len(k.listener.calls) >= 400, timeout=30, what="400 DLRs")
    refs = collections.Counter(q["ref"] for _, q in k.listener.requests())
    assert set(refs) == ids and set(refs.values()) == {2}, refs


def test_kill_9_in_a_rate_limited_batch_sends_each_waiting_reminder_once(ctx):
    # 200 rows at 10 SMS/s: at the kill most are waiting for the rate limiter. They must go back to
    # queued and out exactly once, not become `unknown` (issue 9: 160 of 200 did).
    k = start_kannel(ctx)
    numbers = [f"+1450556{i:04d}" for i in range(200)]
    for i, n in enumerate(numbers):
        ctx.db.add_due(f"KK-{i}", n)
    conf = write_conf(ctx.tmp, ctx.db, k.sendsms_url, gateway=k.gateway(rate_per_second=10.0),
                      schedule={"batch_size": 500, "lease_s": 5})
    harness.set_listen(conf, public_url=k.listener.url + "/")
    f = harness.kill_9_mid_batch(ctx, conf, numbers, lambda: [m.receiver for m in k.received()],
                                 max_in_flight=8, lease_s=5)
    assert f["at_kill"].get("sent", 0) >= 10 and f["leased_at_kill"] > 0, f


def test_fixture_injects_mo_into_the_sms_service_only(ctx):
    # For the inbound listener's tests: an MO through the MO fake SMSC reaches the get-url, accents
    # as UTF-8, and nothing reaches the MT fake SMSC.
    k = start_kannel(ctx, service=True)
    k.inject_mo("+15145550123", "27022", "STOP")
    k.inject_mo("+15145550124", "270282", "Arrêt svp")
    harness.wait_until(lambda: len(k.listener.calls) >= 2, what="2 MOs at the get-url")
    got = k.listener.requests()
    assert [path for path, _ in got] == ["/v1/inbound/kannel"] * 2, got
    assert [(q["from"], q["to"], q["text"]) for _, q in got] == [
        ("+15145550123", "27022", "STOP"), ("+15145550124", "270282", "Arrêt svp")], got
    assert all(re.fullmatch(r"[0-9a-f-]{36}", q["id"]) for _, q in got), got
    assert k.received() == []


harness.main(globals())
