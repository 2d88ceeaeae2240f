"""A fake of Twilio's Programmable Messaging REST API (2010-04-01) for integration tests: creates
messages, answers Twilio's error JSON as scripted per destination number, and records every request.

    fake = FakeTwilio()                      # "AC" + 32 hex SID and a random auth token
    fake.on("+15145550001", code=21211)      # that number is refused with Twilio's 21211, forever
    fake.on("+15145550002", status=429, code=20429, retry_after=2, times=1)
    ... point payremindd at fake.url with username = fake.account_sid ...
    fake.requests() / fake.created() / fake.messages   # what arrived, what Twilio would have sent
    fake.stop()

It runs in a background thread of the test process (ThreadingHTTPServer on a free loopback port).
Routes live in FakeTwilio.routes, so inbound messages and status callbacks can be added later."""

import base64
import binascii
import email.utils
import json
import re
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/2010-04-01"

# Twilio's error codes used here: HTTP status and the message Twilio gives ({to}, {from} filled in).
ERRORS = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service is unavailable. Please try again"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: "
                 "{from} via SMS."),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}

# GSM 03.38 basic set and extension table (extension characters take two septets).
GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = "\f^{}\\[~]|€"


def num_segments(body):
    """Segments Twilio bills for body: GSM-7 160/153 septets, else UCS-2 70/67 UTF-16 units."""
    if all(c in GSM_BASIC or c in GSM_EXT for c in body):
        n, single, multi = sum(2 if c in GSM_EXT else 1 for c in body), 160, 153
    else:
        n, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if n <= single else -(-n // multi)


def new_sid(prefix):
    return prefix + secrets.token_hex(16)


def rfc2822(t):
    return email.utils.formatdate(t, usegmt=False).replace("-0000", "+0000")


class Rule:
    """How the fake answers one destination number. code: a Twilio error code (status from ERRORS
    unless given); status alone: that HTTP status with Twilio's generic code for it; neither: 201.
    created: the message is stored even though an error is answered (a 5xx after creation).
    delay: seconds to wait before answering. times: how many requests it answers (None: all)."""

    def __init__(self, code=None, status=None, retry_after=None, delay=0.0, created=False, times=None):
        if code is not None and code not in ERRORS:
            raise ValueError(f"unknown Twilio code {code}")
        if status is not None and code is None:
            code = {401: 20003, 404: 20404, 429: 20429, 503: 20503}.get(status, 20500 if status >= 500 else None)
        self.code = code
        self.status = status if status is not None else (ERRORS[code][0] if code is not None else 201)
        self.retry_after = retry_after
        self.delay = delay
        self.created = created or self.status == 201
        self.times = times


class FakeTwilio:
    def __init__(self, account_sid=None, auth_token=None, host="127.0.0.1"):
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.rules = {}      # destination number -> [Rule, ...], the first one that still has times
        self.records = []    # one dict per request, in arrival order
        self.messages = {}   # sid -> the message resource, as Twilio would return it
        self.routes = [
            ("POST", re.compile(rf"^{API}/Accounts/([^/]+)/Messages\.json$"), self.create_message),
            ("GET", re.compile(rf"^{API}/Accounts/([^/]+)/Messages/(SM[0-9a-f]{{32}})\.json$"), self.fetch_message),
        ]
        self.server = ThreadingHTTPServer((host, 0), self.handler_class())
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-twilio", daemon=True)
        self.thread.start()

    # --- scripting and inspection -------------------------------------------------------------------

    def on(self, to, **kw):
        """Script the answers for one destination number (see Rule); rules queue up in call order."""
        rule = Rule(**kw)
        with self.lock:
            self.rules.setdefault(to, []).append(rule)
        return rule

    def requests(self, to=None):
        """Every request recorded (to=...: the Messages.json POSTs to that number)."""
        with self.lock:
            recs = list(self.records)
        return [r for r in recs if to is None or r["form"].get("To") == to]

    def created(self, to=None):
        """The message resources created, in creation order."""
        with self.lock:
            msgs = list(self.messages.values())
        return [m for m in msgs if to is None or m["to"] == to]

    def stop(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    # --- the API ----------------------------------------------------------------------------------------

    def take_rule(self, to):
        with self.lock:
            for rule in self.rules.get(to, []):
                if rule.times is None or rule.times > 0:
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return Rule()

    def create_message(self, rec, account):
        """POST Messages.json: Twilio's checks in its order (auth, required parameters), then the script."""
        form = rec["form"]
        if not rec["auth_ok"] or account != self.account_sid:
            return self.error(rec, 20003)
        if not form.get("To"):
            return self.error(rec, 21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return self.error(rec, 21603)
        if not form.get("Body") and not form.get("MediaUrl"):
            return self.error(rec, 21602)
        if len(form["Body"]) > 1600:
            return self.error(rec, 21617)
        rule = self.take_rule(form["To"])
        if rule.delay and self.closing.wait(rule.delay):
            return None
        msg = self.store_message(account, form) if rule.created else None
        rec["sid"] = msg["sid"] if msg else None
        if rule.status == 201:
            return 201, msg, {}
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else {}
        return self.error(rec, rule.code, rule.status, headers)

    def fetch_message(self, rec, account, sid):
        if not rec["auth_ok"] or account != self.account_sid:
            return self.error(rec, 20003)
        with self.lock:
            msg = self.messages.get(sid)
        return (200, msg, {}) if msg else self.error(rec, 20404)

    def store_message(self, account, form):
        now = time.time()
        sid = new_sid("SM")
        uri = f"{API}/Accounts/{account}/Messages/{sid}"
        msg = {
            "account_sid": account, "api_version": "2010-04-01", "body": form["Body"],
            "date_created": rfc2822(now), "date_sent": None, "date_updated": rfc2822(now),
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": str(num_segments(form["Body"])), "price": None,
            "price_unit": "USD", "sid": sid, "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": form["To"], "uri": f"{uri}.json",
            # Not part of Twilio's answer: where its status callbacks would go.
            "_status_callback": form.get("StatusCallback"),
        }
        with self.lock:
            self.messages[sid] = msg
        return msg

    def error(self, rec, code, status=None, headers=None):
        status = status or ERRORS[code][0]
        form = rec["form"]
        message = ERRORS[code][1].format(to=form.get("To", ""), path=rec["path"], **{"from": form.get("From", "")})
        if code == 20003:
            headers = dict(headers or {}, **{"WWW-Authenticate": 'Basic realm="Twilio API"'})
        return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status}, headers or {}

    # --- HTTP ---------------------------------------------------------------------------------------------

    def check_auth(self, header):
        """(user, ok) from an Authorization: Basic header."""
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return None, False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return user, secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(
            password.encode(), self.auth_token.encode())

    def dispatch(self, req, method):
        path, _, query = req.path.partition("?")
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length > 0 else b""
        user, ok = self.check_auth(req.headers.get("Authorization"))
        fields = urllib.parse.parse_qs(raw.decode("utf-8", "replace") if method == "POST" else query,
                                       keep_blank_values=True, encoding="utf-8", errors="replace")
        rec = {"time": time.time(), "method": method, "path": path, "headers": dict(req.headers.items()),
               "raw": raw, "form": {k: v[-1] for k, v in fields.items()}, "auth_user": user, "auth_ok": ok,
               "status": None, "code": None, "sid": None}
        with self.lock:
            self.records.append(rec)
        answer = None
        for m, pattern, fn in self.routes:
            match = pattern.match(path)
            if match and m == method:
                answer = fn(rec, *match.groups())
                break
        else:
            answer = self.error(rec, 20404)
        if answer is None:
            return None
        status, body, headers = answer
        rec["status"], rec["code"] = status, body.get("code") if status >= 400 else None
        return status, {k: v for k, v in body.items() if not k.startswith("_")}, headers

    def handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_method(self, method):
                answer = fake.dispatch(self, method)
                if answer is None:
                    self.close_connection = True
                    return
                status, body, headers = answer
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting (a scripted delay)

            def do_POST(self):
                self.handle_method("POST")

            def do_GET(self):
                self.handle_method("GET")

            def log_message(self, fmt, *args):
                pass

        return Handler
