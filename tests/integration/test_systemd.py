"""The daemon under systemd's notify protocol: a datagram socket owned by the test plays systemd
(NOTIFY_SOCKET, WATCHDOG_USEC) and checks READY, WATCHDOG, STATUS, RELOADING and STOPPING."""

import array
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import write_conf  # noqa: E402

READY_TIMEOUT = 5  # a daemon that sends no READY=1 in this time does not speak the protocol yet
WATCHDOG_USEC = 400000


class NotifySocket:
    """What systemd listens on: every datagram is kept with the sender's pid (SO_PASSCRED), as
    systemd's NotifyAccess=main only accepts messages from the main process."""

    def __init__(self, tmp, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"payremind-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = os.path.join(tmp, "notify.sock")
            self.sock.bind(self.env)
        self.seen = []  # (text, pid, monotonic µs at receipt)

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except socket.timeout:
            return None
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = array.array("i", payload[:12])[0]
        msg = (data.decode(), pid, time.monotonic_ns() // 1000)
        self.seen.append(msg)
        return msg

    def wait_for(self, pred, timeout, what=None):
        """The first new message pred accepts; None on timeout, or a failure when what names it."""
        end = time.time() + timeout
        while time.time() < end:
            msg = self.recv(end - time.time())
            if msg is not None and pred(msg[0]):
                return msg
        if what:
            raise AssertionError(f"no {what} within {timeout} s; got {[m[0] for m in self.seen]}")
        return None

    def count(self, text, seconds):
        """How many times text arrives in the next `seconds`."""
        n, end = 0, time.time() + seconds
        while time.time() < end:
            msg = self.recv(end - time.time())
            n += msg is not None and msg[0] == text
        return n

    def close(self):
        self.sock.close()
        if not self.env.startswith("@") and os.path.exists(self.env):
            os.unlink(self.env)


def start(ctx, abstract=False, watchdog_pid=None, watchdog=True, argv_prefix=()):
    """payremindd in normal mode under the test's notify socket. Returns (proc, socket, ready msg),
    ready None when no READY=1 came (the daemon does not notify yet)."""
    gw = ctx.sandbox()
    conf = write_conf(ctx.tmp, ctx.db, gw.url)
    ns = NotifySocket(ctx.tmp, abstract)
    ctx.cleanups.append(ns.close)
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_PID", "WATCHDOG_USEC", "NOTIFY_SOCKET")}
    env["NOTIFY_SOCKET"] = ns.env
    if watchdog:
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    if watchdog_pid is not None:
        env["WATCHDOG_PID"] = str(watchdog_pid)
    proc = ctx.spawn([*argv_prefix, *harness.daemon_cmd(conf)], env=env)
    ready = ns.wait_for(lambda t: t == "READY=1", READY_TIMEOUT)
    return proc, ns, ready, conf


def daemon_is_wired():
    """Whether src/payremindd.c calls notify_ready(): until it does, these tests are skipped."""
    with open(os.path.join(harness.SRC, "src", "payremindd.c")) as f:
        return "notify_ready()" in f.read()


def skip(name):
    """No READY=1 came: a failure once the daemon calls notify_ready(), a SKIP before."""
    assert not daemon_is_wired(), f"payremindd sent no READY=1 within {READY_TIMEOUT} s"
    print(f"SKIP {name}: payremindd sent no READY=1 within {READY_TIMEOUT} s (sd_notify not wired yet)")


def fields(text):
    return dict(line.split("=", 1) for line in text.split("\n") if "=" in line)


def test_ready_watchdog_reload_and_stop_in_order(ctx):
    proc, ns, ready, _ = start(ctx)
    if ready is None:
        return skip("test_ready_watchdog_reload_and_stop_in_order")
    early = [m[0] for m in ns.seen[:-1]]
    assert all(t.startswith(("STATUS=", "WATCHDOG=")) for t in early), f"before READY=1: {early}"
    # The loop pings at half the interval: about 7 in 1.5 s; 2 is enough to prove it repeats.
    pings = ns.count("WATCHDOG=1", 1.5)
    assert pings >= 2, f"{pings} WATCHDOG=1 in 1.5 s with WATCHDOG_USEC={WATCHDOG_USEC}"
    status = ns.wait_for(lambda t: t.startswith("STATUS=") and any(c.isdigit() for c in t), 10,
                         "STATUS= with queue figures")
    assert "queued" in status[0], status[0]

    before = time.monotonic_ns() // 1000
    proc.send_signal(signal.SIGHUP)
    reloading = ns.wait_for(lambda t: t.startswith("RELOADING=1"), 10, "RELOADING=1 after SIGHUP")
    f = fields(reloading[0])
    assert f.get("RELOADING") == "1" and "MONOTONIC_USEC" in f, reloading[0]
    assert before <= int(f["MONOTONIC_USEC"]) <= reloading[2], (before, f, reloading[2])
    ns.wait_for(lambda t: t == "READY=1", 10, "READY=1 after the reload")

    proc.send_signal(signal.SIGTERM)
    ns.wait_for(lambda t: t == "STOPPING=1", 10, "STOPPING=1 after SIGTERM")
    assert proc.wait(30) == 0
    # systemd (NotifyAccess=main) only listens to the main process.
    assert {m[1] for m in ns.seen} == {proc.pid}, {m[1] for m in ns.seen}


def test_reload_of_a_broken_file_keeps_running_and_reports_ready(ctx):
    proc, ns, ready, conf = start(ctx)
    if ready is None:
        return skip("test_reload_of_a_broken_file_keeps_running_and_reports_ready")
    with open(conf, "a") as f:  # a second sender group, with a short code that is not ours
        f.write('sender = { short_code = "12345"; };\n')
    proc.send_signal(signal.SIGHUP)
    ns.wait_for(lambda t: t.startswith("RELOADING=1\nMONOTONIC_USEC="), 10, "RELOADING=1")
    ns.wait_for(lambda t: t == "READY=1", 10, "READY=1 after a refused reload")
    assert ns.count("WATCHDOG=1", 1.0) >= 1 and proc.poll() is None, "the daemon stopped after a bad reload"
    proc.send_signal(signal.SIGTERM)
    ns.wait_for(lambda t: t == "STOPPING=1", 10, "STOPPING=1")
    assert proc.wait(30) == 0
    with open(proc.log_path) as f:
        log = f.read()
    assert "keeping the running configuration" in log, log


def test_abstract_notify_socket_gets_the_messages(ctx):
    proc, ns, ready, _ = start(ctx, abstract=True)
    if ready is None:
        return skip("test_abstract_notify_socket_gets_the_messages")
    assert ns.count("WATCHDOG=1", 1.5) >= 2
    proc.send_signal(signal.SIGTERM)
    ns.wait_for(lambda t: t == "STOPPING=1", 10, "STOPPING=1")
    assert proc.wait(30) == 0


# WATCHDOG_PID as sd_watchdog_enabled(3) reads it: "self" is the daemon (sh execs it, keeping its pid).
WATCHDOG_CASES = [
    ("WATCHDOG_PID names the daemon", dict(watchdog_pid="$$"), True),
    ("WATCHDOG_PID names another process (inherited)", dict(watchdog_pid=1), False),
    ("no WATCHDOG_USEC (no WatchdogSec=)", dict(watchdog=False), False),
]


def test_watchdog_pings_only_when_meant_for_this_process(ctx):
    for what, kw, pings in WATCHDOG_CASES:
        argv_prefix = ()
        if kw.get("watchdog_pid") == "$$":
            kw = dict(kw, watchdog_pid=None)
            argv_prefix = ("/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh")
        proc, ns, ready, _ = start(ctx, **kw, argv_prefix=argv_prefix)
        if ready is None:
            return skip("test_watchdog_pings_only_when_meant_for_this_process")
        got = ns.count("WATCHDOG=1", 1.5)
        assert (got >= 2) if pings else (got == 0), f"{what}: {got} WATCHDOG=1 in 1.5 s"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, what
        ns.close()


harness.main(globals())
