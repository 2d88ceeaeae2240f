"""The shipped nginx site (deploy/nginx/payremind.conf) in front of a real payremindd, over TLS with a
self-signed certificate: the page, the hand-off and a webhook go through; the edge sets X-Forwarded-For
(a client's own is ignored); bodies and slow clients are bounded; the access log holds no token, no phone
number, no key and no query string."""

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import run_once, summary, write_conf  # noqa: E402

SITE = os.path.join(harness.SRC, "deploy", "nginx", "payremind.conf")
KEY = "nginx-webhook-key"
SECRET = "nginx-portal-secret"
HOST = "pay.aro.ca"


class Edge:
    """nginx with the shipped site: ports, certificate, logs and upstream substituted, nothing else."""

    def __init__(self, ctx, upstream_port):
        assert shutil.which("nginx"), "nginx is not installed: apt-get install nginx-light"
        self.dir = os.path.join(ctx.tmp, "nginx")
        os.makedirs(os.path.join(self.dir, "tmp"))
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        self.http_port, self.https_port = harness.free_port(), harness.free_port()
        self.access_log = os.path.join(self.dir, "access.log")
        with open(SITE) as f:
            site = f.read()
        for old, new in (("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
                         ("listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;"),
                         ("server 127.0.0.1:8787;", f"server 127.0.0.1:{upstream_port};"),
                         ("/etc/ssl/certs/pay.aro.ca.pem", cert), ("/etc/ssl/private/pay.aro.ca.key", key),
                         ("/var/log/nginx/payremind-access.log", self.access_log),
                         ("/var/log/nginx/payremind-error.log", os.path.join(self.dir, "site-error.log"))):
            assert old in site, old
            site = site.replace(old, new)
        site = re.sub(r"^\s*listen \[::\]:.*$", "", site, flags=re.M)
        with open(os.path.join(self.dir, "payremind.conf"), "w") as f:
            f.write(site)
        t = os.path.join(self.dir, "tmp")
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(f"""daemon off;
user root;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log notice;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
  access_log off;
  include {self.dir}/payremind.conf;
}}
""")
        conf = os.path.join(self.dir, "nginx.conf")
        check = subprocess.run(["nginx", "-t", "-c", conf], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = ctx.spawn(["nginx", "-c", conf])
        harness.wait_until(self._up, timeout=10, what="nginx")

    def _up(self):
        try:
            self.request("GET", "/nothing-here")
            return True
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=15, context=tls)
        try:
            conn.request(method, path, body=body, headers=dict({"Host": HOST}, **(headers or {})))
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
        finally:
            conn.close()


def test_page_hand_off_and_webhook_through_nginx_with_tls_and_a_clean_access_log(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    secret = harness.write_secret(ctx.tmp, "checkout-secret", SECRET)
    conf = write_conf(ctx.tmp, db, gw.url,
                      extra=f'checkout = {{ url = "http://127.0.0.1:9/checkout"; secret_file = "{secret}"; }};')
    db.add_due("N-1001", "+15145550301", language="fr")
    db.add_due("N-1002", "+15145550302", language="en")
    assert summary(run_once(conf))["sent"] == 2
    tokens = {r["to"]: re.search(r"/p/([A-Za-z0-9_-]{22})", r["text"]).group(1) for r in gw.accepted()}
    port = harness.free_port()
    harness.set_listen(conf, port=port, public_url=f"https://{HOST}/",
                       secret_file=harness.write_secret(ctx.tmp, "listen-key", KEY), trusted_proxies=["127.0.0.1"])
    daemon = ctx.spawn(harness.daemon_cmd(conf))
    edge = Edge(ctx, port)
    harness.wait_until(lambda: edge.request("GET", f"/p/{tokens['+15145550301']}")[0] == 200, timeout=10,
                       what="the page through nginx")
    # The page, its headers and HSTS from the edge.
    status, headers, body = edge.request("GET", f"/p/{tokens['+15145550302']}?lang=en")
    assert status == 200 and "Pay online" in body and "$123.45" in body, (status, body[:200])
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["strict-transport-security"] == "max-age=31536000"
    # The hand-off: 303 to the portal, signed.
    status, headers, _ = edge.request("POST", f"/p/{tokens['+15145550301']}", body="",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["location"].startswith("http://127.0.0.1:9/checkout?reference="), headers
    # A webhook: an inbound STOP through the edge, and a payment result.
    status, _, _ = edge.request("POST", "/v1/inbound/json", body=json.dumps(
        {"from": "+15145550302", "to": "27022", "text": "STOP", "id": "edge-1"}),
        headers={"X-Payremind-Key": KEY, "Content-Type": "application/json"})
    assert status == 200 and db.one("SELECT count(*) FROM payremind.opt_outs WHERE msisdn = '+15145550302'") == 1
    rid = db.one("SELECT id::text FROM payremind.reminders WHERE msisdn = '+15145550301'")
    raw = json.dumps({"id": "edge-pay", "reference": rid, "status": "paid", "amount_cents": 12345}).encode()
    status, _, _ = edge.request("POST", "/v1/payments/json", body=raw, headers={
        "X-Payremind-Signature": hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()})
    assert status == 200 and db.one("SELECT count(*) FROM payremind.payments") == 1
    # The edge names the client; a client's own X-Forwarded-For is not believed.
    status, _, _ = edge.request("POST", "/v1/inbound/json", body="{}",
                                headers={"X-Payremind-Key": "wrong", "X-Forwarded-For": "203.0.113.9"})
    assert status == 401
    # Bodies over 16 KiB stop at the edge; /healthz and /metrics are not public.
    assert edge.request("POST", "/v1/inbound/json", body="x" * 20000, headers={"X-Payremind-Key": KEY})[0] == 413
    assert edge.request("GET", "/healthz")[0] == 404 and edge.request("GET", "/metrics")[0] == 404
    time.sleep(0.3)
    with open(daemon.log_path) as f:
        log = f.read()
    assert "client=127.0.0.1" in log and "203.0.113.9" not in log, log[-2000:]
    with open(edge.access_log) as f:
        access = f.read()
    assert access.count("\n") >= 8, access
    for secret_text in list(tokens.values()) + ["+1514555", "5145550", KEY, "lang=", "?"]:
        assert secret_text not in access, (secret_text, access)
    assert '"GET /p/-" 200' in access and '"POST /p/-" 303' in access and '"POST /v1/payments/json" 200' in access


harness.main(globals())
