"""The payment page's test fixtures, shared by test_paypage and test_browser: a checkout standing in for
ARO's portal (it checks the hand-off's signature and expiry as the portal would), and a site: reminders
sent by a real --once run, then payremindd with its listener serving their links."""

import hashlib
import hmac
import http.server
import json
import re
import threading
import time
import urllib.parse

import harness
from harness import run_once, summary, write_conf

SECRET = "portal-shared-secret-0600"
LINK = re.compile(r"https://pay\.aro\.ca/p/([A-Za-z0-9_-]{22})")
NBSP = "\u00a0"


class Checkout:
    """ARO's portal as far as the hand-off goes: checks the signature of the query before &signature,
    exactly as sent, and the expiry, then says whether it would take the payment."""

    def __init__(self):
        self.seen = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                signed, _, sig = query.rpartition("&signature=")
                want = hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).hexdigest()
                params = dict(urllib.parse.parse_qsl(signed))
                ok = hmac.compare_digest(want, sig) and int(params.get("expires", "0")) > time.time()
                seen.append(dict(params, path=path, signature_ok=hmac.compare_digest(want, sig),
                                 fresh=int(params.get("expires", "0")) > time.time()))
                body = b"checkout ok" if ok else b"refused"
                self.send_response(200 if ok else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/checkout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Site:
    """A --once run that sends reminders, then payremindd with its listener serving the links."""

    def __init__(self, ctx, rows, checkout=True, extra=""):
        self.ctx = ctx
        self.gw = ctx.sandbox()
        self.checkout = Checkout() if checkout else None
        if self.checkout:
            ctx.cleanups.append(self.checkout.stop)
        secret = harness.write_secret(ctx.tmp, "checkout-secret", SECRET)
        group = f'checkout = {{ url = "{self.checkout.url}"; secret_file = "{secret}"; ttl_s = 600; }};' \
            if checkout else ""
        self.conf = write_conf(ctx.tmp, ctx.db, self.gw.url, extra=group + extra)
        for ref, msisdn, lang in rows:
            ctx.db.add_due(ref, msisdn, language=lang, amount_cents=123456)
        assert summary(run_once(self.conf))["sent"] == len(rows)
        self.tokens = {r["to"]: LINK.search(r["text"]).group(1) for r in self.gw.accepted()}
        self.port = harness.free_port()
        harness.set_listen(self.conf, port=self.port, public_url=f"http://127.0.0.1:{self.port}/")
        self.proc = ctx.spawn(harness.daemon_cmd(self.conf))
        harness.wait_until(lambda: self.up(), timeout=10, what="the listener")

    def up(self):
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        return harness.http_request(self.port, method, path, body, headers)

    def page(self, msisdn, method="GET", query="", ua=None):
        return self.request(method, f"/p/{self.tokens[msisdn]}{query}", headers={"User-Agent": ua} if ua else {})

    def token_row(self, msisdn):
        return self.ctx.db.q("SELECT open_count, first_opened_at IS NOT NULL, redeemed_at IS NOT NULL"
                             " FROM payremind.payment_tokens t JOIN payremind.reminders r ON r.id = t.reminder_id"
                             " WHERE r.msisdn = %s", msisdn)[0]

    def pay(self, body, signature=True):
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature:
            key = SECRET if signature is True else signature
            headers["X-Payremind-Signature"] = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        return self.request("POST", "/v1/payments/json", body=raw, headers=headers)

    def log(self):
        with open(self.proc.log_path) as f:
            return f.read()


def plain(text):
    return text.replace(NBSP, " ").replace("\u202f", " ")
