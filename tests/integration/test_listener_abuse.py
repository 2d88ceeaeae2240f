"""The webhook listener against abusive clients (SPEC §6, issue 9): slow clients that hold connections and
trickle bytes, bodies and parameters that are not valid UTF-8, HEAD on routes that change state, escaped NULs
in the path, repeated parameters, and X-Forwarded-For from trusted proxies only.

Every test runs a real payremindd with its listener on a free port (test_listener.Listener), its sandbox
gateway and its own database."""

import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_listener import KEY, add_reminder, listener, replies, snapshot  # noqa: E402

A, B = "+15145550101", "+15145550102"
SLOW_SOURCE = "127.0.0.2"  # the slow clients' address; probes come from 127.0.0.1
SLOW_CONNECTIONS = 2000
DEADLINE_S = 10  # LISTENER_DEADLINE_MS in src/listener.c
PER_CLIENT = 64  # LISTENER_PER_CLIENT


def raise_nofile(want):
    """This process will hold `want` sockets: raise its soft RLIMIT_NOFILE as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def daemon_soft_nofile_1024():
    """preexec_fn: start the daemon with the soft limit systemd gives (1024), the hard one as it is."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))


class SlowClients:
    """n connections from `source`, each sending a request line and then one header line every `every` s,
    never the blank line that ends the headers. Tracks which ones the listener closed."""

    def __init__(self, port, n, source, every=2.0):
        self.port, self.every = port, every
        self.open, self.closed_by_server, self.connect_failed = {}, 0, 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.poll = select.poll()
        deadline = time.time() + 60
        for i in range(n):
            if time.time() > deadline:
                raise AssertionError(f"opening {n} connections took over 60 s ({i} opened)")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((source, 0))
                s.settimeout(3)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                s.setblocking(False)
            except OSError:
                s.close()
                self.connect_failed += 1
                continue
            self.open[s.fileno()] = s
            self.poll.register(s.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _reap(self):
        """Close (on our side) every connection the listener has closed: EOF, reset or error."""
        for fd, _ in self.poll.poll(0):
            with self.lock:
                s = self.open.get(fd)
                if s is None:
                    continue
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    continue  # an answer (there should be none before the blank line); EOF follows
                self.poll.unregister(fd)
                del self.open[fd]
                s.close()
                self.closed_by_server += 1

    def _trickle(self):
        end = time.time() + 120  # bounded whatever the test does
        n = 0
        while not self.stop_event.is_set() and time.time() < end:
            self._reap()
            with self.lock:
                socks = list(self.open.values())
            for s in socks:
                try:
                    s.send(f"X-Slow-{n}: {'x' * 8}\r\n".encode())
                except OSError:
                    pass  # closed by the listener: _reap sees it
            n += 1
            self.stop_event.wait(self.every)

    def still_open(self):
        self._reap()
        with self.lock:
            return len(self.open)

    def close(self):
        self.stop_event.set()
        self.thread.join(10)
        with self.lock:
            for s in self.open.values():
                s.close()
            self.open.clear()


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def start_listener(ctx, extra_listen="", **kw):
    """A Listener whose daemon starts with a soft RLIMIT_NOFILE of 1024 and, given extra_listen, more
    keys in its listen group (e.g. trusted_proxies)."""
    spawn = ctx.spawn

    def spawn_with_limits(cmd, **skw):
        if extra_listen:
            with open(cmd[2]) as f:
                text = f.read()
            with open(cmd[2], "w") as f:
                f.write(text.replace("listen = { ", "listen = { " + extra_listen + " ", 1))
        return spawn(cmd, preexec_fn=daemon_soft_nofile_1024, **skw)
    ctx.spawn = spawn_with_limits
    try:
        return listener(ctx, **kw)
    finally:
        ctx.spawn = spawn


# ---- 1. slow clients ----

def test_two_thousand_slow_clients_do_not_silence_health_stop_or_sending(ctx):
    db = ctx.db
    assert raise_nofile(SLOW_CONNECTIONS + 200) >= SLOW_CONNECTIONS + 200, "RLIMIT_NOFILE too low for the test"
    ln = start_listener(ctx)
    # Started with a soft limit of 1024 descriptors (systemd's default), the daemon raised it to the hard
    # limit so that the listener's 1024 connections fit beside the database, libcurl and the logs.
    with open(f"/proc/{ln.proc.pid}/limits") as f:
        soft, hard = next(line.split()[3:5] for line in f if line.startswith("Max open files"))
    assert soft == hard, (soft, hard)
    queued = add_reminder(db, A, "queued")
    slow = SlowClients(ln.port, SLOW_CONNECTIONS, SLOW_SOURCE)
    try:
        assert slow.connect_failed < SLOW_CONNECTIONS // 2, f"{slow.connect_failed} connects failed"
        t_storm = time.time()
        # While they are held: /healthz and an authenticated STOP from 127.0.0.1 within 1 s each, every time.
        health_times, rows = [], []
        for i in range(8):
            (status, _, body), dt = timed(lambda: ln.request("GET", "/healthz"))
            assert (status, body.strip()) == (200, "ok"), (status, body)
            health_times.append(dt)
            rows.append(db.add_due(f"STORM-{i}", f"+1438555{2000 + i:04d}"))
            time.sleep(0.5)
        (status, _, body), dt = timed(lambda: ln.json("/v1/inbound/json", {
            "from": A, "to": "27022", "text": "STOP", "id": "storm-stop"}))
        assert (status, body.strip()) == (200, "ok") and dt < 1.0, (status, body, dt)
        (status, _, body), dt_k = timed(lambda: ln.kannel("/v1/inbound/kannel", {
            "from": B, "to": "27022", "text": "stop", "id": "storm-stop-k"}))
        assert status == 200 and dt_k < 1.0, (status, body, dt_k)
        assert max(health_times) < 1.0, health_times
        assert db.q("SELECT msisdn FROM payremind.opt_outs ORDER BY 1") == [(A,), (B,)]
        assert db.one("SELECT state FROM payremind.reminders WHERE id = %s", queued) == "cancelled"
        # Only PER_CLIENT of them were let in (plus a few racing the count across the listener's threads).
        time.sleep(1)
        held = slow.still_open()
        assert held <= PER_CLIENT + 8, f"{held} slow connections still open from one address"
        # The daemon goes on sending: the due rows inserted during the storm go out through the gateway.
        numbers = {f"+1438555{2000 + i:04d}" for i in range(8)}
        harness.wait_until(lambda: numbers <= {r["to"] for r in ln.gw.accepted()}, timeout=30,
                           what="the reminders of the rows inserted during the storm")
        # A request must arrive whole within the deadline: trickling a header line every 2 s does not keep a
        # connection, so every slow one is closed by DEADLINE_S (+ the sweep and this loop's slack).
        harness.wait_until(lambda: slow.still_open() == 0, timeout=max(1, DEADLINE_S + 5 - (time.time() - t_storm)),
                           what="every slow connection closed by the request deadline")
        assert time.time() - t_storm < DEADLINE_S + 6
        (status, _, _), dt = timed(lambda: ln.request("GET", "/healthz"))
        assert status == 200 and dt < 1.0
    finally:
        slow.close()
    assert "whose request did not arrive within" in ln.log() or "over 64 per client" in ln.log()


def test_one_trickling_request_is_closed_at_its_deadline_not_kept_by_each_byte(ctx):
    ln = start_listener(ctx)
    with socket.create_connection(("127.0.0.1", ln.port), timeout=DEADLINE_S + 10) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /v1/inbound/json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                  b"X-Payremind-Key: " + KEY.encode() + b"\r\n\r\n")
        closed_at = None
        for _ in range(2 * DEADLINE_S + 10):  # one body byte per half second: never idle for long
            try:
                s.sendall(b"{")
                s.settimeout(0.5)
                if s.recv(4096) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed_at = time.monotonic() - t0
                break
        assert closed_at is not None and closed_at < DEADLINE_S + 2, closed_at
        assert closed_at > DEADLINE_S - 1, closed_at


# ---- 2. not UTF-8 ----

def test_parameters_and_bodies_that_are_not_utf8_get_400_naming_the_field(ctx):
    db = ctx.db
    ln = start_listener(ctx)
    key = {"X-Payremind-Key": KEY, "Content-Type": "application/json"}
    base = f"/v1/inbound/kannel?key={KEY}&from=15145550101&to=27022"
    cases = [
        # Above U+10FFFF: PostgreSQL refuses it, and the old listener answered 503 for ever.
        (ln.request("GET", base + "&id=big1&text=%F4%90%80%80"), "field text: not valid UTF-8"),
        (ln.request("GET", base + "&id=big2&text=%ED%A0%80"), "field text: not valid UTF-8"),  # surrogate
        (ln.request("GET", base + "&id=big3&text=%C0%AF"), "field text: not valid UTF-8"),  # overlong
        (ln.request("GET", base + "&id=big4&text=%F8%88%80%80%80"), "field text: not valid UTF-8"),  # 5 bytes
        (ln.request("GET", base + "&id=big5&text=caf%E9"), "field text: not valid UTF-8"),  # Latin-1
        (ln.request("GET", base + "&id=%FF&text=STOP"), "field id: not valid UTF-8"),
        (ln.request("GET", f"/v1/dlr/kannel?key={KEY}&ref=%F4%90%80%80&status=1"), "field ref: not valid UTF-8"),
        (ln.request("POST", "/v1/inbound/json",
                    b'{"from":"+15145550101","to":"27022","text":"\xf4\x90\x80\x80","id":"j1"}', key),
         "body: not valid UTF-8"),
        (ln.request("POST", "/v1/dlr/json", b'{"id":"g","reference":"\xed\xa0\x80","status":"delivered"}', key),
         "body: not valid UTF-8"),
        (ln.request("POST", "/v1/inbound/json", '{"from":"+15145550101","to":"27022","text":"\\ud800","id":"j2"}',
                    key), "bad JSON"),  # a lone surrogate escape
    ]
    for (status, _, body), reason in cases:
        assert status == 400 and reason in body, (status, body, reason)
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    # Valid UTF-8 up to U+10FFFF still goes in.
    status, _, _ = ln.request("GET", base + "&id=ok1&text=" + urllib.parse.quote("ARRÊT \U0010FFFF"))
    assert status == 200
    assert db.one("SELECT text FROM payremind.inbound_messages") == "ARRÊT \U0010FFFF"


def test_twilio_form_that_is_not_utf8_gets_400_not_503(ctx):
    ln = start_listener(ctx, twilio=True)
    from test_listener import TWILIO_TOKEN, twilio_signature
    path = "/v1/inbound/twilio"
    # Above U+10FFFF in Body. The signature cannot be computed over text that is not UTF-8 anyway: the
    # UTF-8 check comes first, and answers 400 (a 403 or 503 would have the gateway retry or alarm).
    body = "From=%2B15145550101&To=27022&Body=%F4%90%80%80&MessageSid=SM" + "2" * 32
    status, _, text = ln.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded",
                                                     "X-Twilio-Signature": twilio_signature(
                                                         TWILIO_TOKEN, ln.public_url + path, {})})
    assert status == 400 and "field Body: not valid UTF-8" in text, (status, text)


# ---- 3. smaller holes ----

def test_head_never_changes_state(ctx):
    db = ctx.db
    add_reminder(db, A, "queued")
    ln = start_listener(ctx)
    before = snapshot(db)
    q = urllib.parse.urlencode({"key": KEY, "from": "15145550101", "to": "27022", "text": "STOP", "id": "head-1"})
    status, headers, _ = ln.request("HEAD", "/v1/inbound/kannel?" + q)
    assert status == 405 and headers["allow"] == "GET", (status, headers)
    ref = add_reminder(db, B, "sent")
    before = snapshot(db)
    status, headers, _ = ln.request("HEAD", f"/v1/dlr/kannel?key={KEY}&ref={ref}&status=1")
    assert status == 405 and headers["allow"] == "GET", (status, headers)
    for path in ("/v1/inbound/json", "/v1/dlr/json", "/v1/inbound/twilio", "/v1/dlr/twilio"):
        status, headers, _ = ln.request("HEAD", path, None, {"X-Payremind-Key": KEY})
        assert status == 405 and headers["allow"] == "POST", (path, status, headers)
    time.sleep(0.5)
    assert snapshot(db) == before
    assert replies(db) == [] and db.one("SELECT count(*) FROM payremind.opt_outs") == 0
    # HEAD stays fine where it changes nothing.
    assert ln.request("HEAD", "/healthz")[0] == 200
    assert ln.request("HEAD", "/metrics")[0] == 200


def test_an_escaped_nul_in_the_path_is_not_a_route(ctx):
    db = ctx.db
    ln = start_listener(ctx)
    msg = '{"from":"+15145550101","to":"27022","text":"STOP","id":"nul-1"}'
    for path in ("/v1/inbound/json%00", "/v1/inbound/json%00.html", "/v1/inbound/%6Ason", "/v1/inbound/json%2F"):
        status, _, body = ln.request("POST", path, msg, {"X-Payremind-Key": KEY, "Content-Type": "application/json"})
        assert status == 404, (path, status, body)
    status, _, _ = ln.request("GET", f"/v1/inbound/kannel%00?key={KEY}&from=15145550101&to=27022&text=STOP&id=n2")
    assert status == 404
    # A raw NUL byte in the request line would shorten the target the listener sees: refused too.
    for target in (b"/v1/inbound/json\x00", b"/v1/inbound/json\x00.html", b"/v1/inbound/json\x00?x=1"):
        with socket.create_connection(("127.0.0.1", ln.port), timeout=10) as s:
            s.sendall(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nX-Payremind-Key: " + KEY.encode() +
                      b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                      str(len(msg)).encode() + b"\r\n\r\n" + msg.encode())
            status_line = s.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.split(b" ")[1] in (b"400", b"404"), (target, status_line)
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    assert ln.request("POST", "/v1/inbound/json", msg, {"X-Payremind-Key": KEY})[0] == 200


def test_a_repeated_parameter_is_refused_naming_it(ctx):
    db = ctx.db
    ln = start_listener(ctx)
    good = f"key={KEY}&from=15145550101&to=27022&text=hello&id=rep-1"
    for extra, name in (("&key=wrong", "key"), ("&from=15145550102", "from"), ("&to=99999", "to"),
                        ("&text=STOP", "text"), ("&id=rep-2", "id")):
        status, _, body = ln.request("GET", "/v1/inbound/kannel?" + good + extra)
        assert status == 400 and f"parameter {name}: given more than once" in body, (extra, status, body)
    # A repeated key is refused even when the first one is wrong (the old listener took the first).
    status, _, body = ln.request("GET", f"/v1/inbound/kannel?key=wrong&key={KEY}&from=15145550101&to=27022"
                                        "&text=STOP&id=rep-3")
    assert status == 400 and "parameter key" in body, (status, body)
    ref = add_reminder(db, B, "sent")
    status, _, body = ln.request("GET", f"/v1/dlr/kannel?key={KEY}&ref={ref}&status=1&status=2")
    assert status == 400 and "parameter status: given more than once" in body, (status, body)
    status, _, body = ln.request("GET", f"/v1/dlr/kannel?key={KEY}&ref={ref}&ref={uuid.uuid4()}&status=1")
    assert status == 400 and "parameter ref: given more than once" in body, (status, body)
    assert db.one("SELECT count(*) FROM payremind.inbound_messages") == 0
    assert db.one("SELECT count(*) FROM payremind.dlr_events") == 0
    assert ln.request("GET", "/v1/inbound/kannel?" + good)[0] == 200


def _bound_request(port, source, raw):
    with socket.socket() as s:
        s.bind((source, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return int(data.split(b" ", 2)[1])


def test_forwarded_for_names_the_client_only_from_a_trusted_proxy(ctx):
    ln = start_listener(ctx, extra_listen='trusted_proxies = ["127.0.0.1"];')
    raw = (b"GET /v1/inbound/kannel?key=wrong&from=15145550101&to=27022&text=x&id=f1 HTTP/1.1\r\nHost: x\r\n"
           b"X-Forwarded-For: 198.51.100.77, 203.0.113.9\r\nConnection: close\r\n\r\n")
    assert _bound_request(ln.port, "127.0.0.1", raw) == 401
    assert _bound_request(ln.port, "127.0.0.3", raw) == 401
    harness.wait_until(lambda: ln.log().count("401 wrong X-Payremind-Key") >= 2, what="the two refusals logged")
    log = ln.log()
    assert "client=203.0.113.9" in log, log       # through the trusted proxy: its rightmost untrusted hop
    assert "client=127.0.0.3" in log, log         # anyone else's header is ignored
    assert "client=198.51.100.77" not in log
    # A trusted proxy is not held to the per-client connection limit: it may hold more than 64.
    conns = []
    try:
        for _ in range(PER_CLIENT + 20):
            c = socket.create_connection(("127.0.0.1", ln.port), timeout=5)
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            conns.append(c)
        time.sleep(0.5)
        status, _, _ = ln.request("GET", "/healthz")
        assert status == 200
        alive = 0
        for c in conns:
            c.setblocking(False)
            try:
                alive += c.recv(1) != b""
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        assert alive == len(conns), f"{len(conns) - alive} of the proxy's connections were refused"
    finally:
        for c in conns:
            c.close()


def test_config_refuses_a_trusted_proxy_that_is_not_an_address(ctx):
    conf = harness.write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms")
    with open(conf) as f:
        text = f.read()
    with open(conf, "w") as f:
        f.write(text.replace("listen = { port = 0; };", 'listen = {\n  port = 0;\n  trusted_proxies = ["proxy.local"];\n};'))
    p = subprocess.run(harness.daemon_cmd(conf, "-n"), capture_output=True, text=True, timeout=30)
    line = text.count("\n", 0, text.index("listen = { port = 0; };")) + 3
    assert p.returncode == 78, (p.returncode, p.stderr)
    assert f"{conf}:{line}: listen.trusted_proxies: \"proxy.local\" is not an IPv4 or IPv6 address" in p.stderr, p.stderr


if __name__ == "__main__":
    harness.main(globals())
