"""Integration test harness: a fresh database per test (from the fixture's migrated template), the
sandbox gateway on a free loopback port, config files, and the real binaries.

Each test file defines test_* functions and ends with `harness.main(globals())`."""

import collections
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import zoneinfo

import psycopg2

STATE = os.environ.get("PAYREMIND_TEST_STATE", "")
# PAYREMIND_TEST_POOLER=transaction: every config write_conf makes for the test's database reaches it
# through PgBouncer in transaction mode, with database.pooling = "transaction" (the pooled ctest runs).
POOLER = os.environ.get("PAYREMIND_TEST_POOLER", "")
BIN = os.environ.get("PAYREMIND_BIN", "")
SRC = os.environ.get("PAYREMIND_SRC", os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

ALL_DAY = '{ days = ["mon","tue","wed","thu","fri","sat","sun"]; start = "00:00"; end = "24:00"; }'
# Regions open around the clock and without a notice delay, so tests pass at any hour with rows that
# name no notice; the real windows and delays are tested by the policy unit tests, `batch --dry-run --at`
# and test_once's notice test.
OPEN_REGIONS = f"""regions = {{
  QC = {{ windows = ( {ALL_DAY} ); holidays = "none"; notice_days = 0; max_per_7_days = 0; }};
  ON = {{ windows = ( {ALL_DAY} ); holidays = "none"; notice_days = 0; max_per_7_days = 3; }};
}};"""


def zone_at_local(lo_min, hi_min):
    """A time zone whose local time is now between lo_min and hi_min minutes after midnight, and that local
    time: windows relative to now stay within one local day whatever hour the test runs."""
    for z in ("America/Toronto", "Europe/Paris", "Asia/Tokyo", "Pacific/Auckland"):
        t = datetime.datetime.now(zoneinfo.ZoneInfo(z))
        if lo_min <= t.hour * 60 + t.minute <= hi_min:
            return z, t
    raise AssertionError(f"no zone at {lo_min}..{hi_min} minutes local")


def window_until(end):
    """A region's rules: open every day from 00:00 to end ("HH:MM"), no holiday, no notice delay."""
    return (f'{{ windows = ( {{ days = ["mon","tue","wed","thu","fri","sat","sun"]; start = "00:00";'
            f' end = "{end}"; }} ); holidays = "none"; notice_days = 0; }};')


def pg_env():
    env = {}
    with open(os.path.join(STATE, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v
    return env


class Database:
    """A database of its own for one test, copied from the migrated template."""

    def __init__(self, name):
        self.env = pg_env()
        self.name = re.sub(r"[^a-z0-9_]", "_", name.lower())[:50] + "_" + str(os.getpid())
        admin = self.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            c.execute(f'CREATE DATABASE "{self.name}" TEMPLATE payremind_template')
        admin.close()
        self.conninfo = f"host={self.env['PGHOST']} port={self.env['PGPORT']} user={self.env['PGUSER']} dbname={self.name}"
        self.conn = self.connect(self.name)
        self.conn.autocommit = True
        self.bouncer = None

    def pooled_conninfo(self):
        """The conninfo of a PgBouncer (transaction mode) in front of this database, started once."""
        if self.bouncer is None:
            import pgbouncer
            self.bouncer = pgbouncer.PgBouncer(None, self)
        return self.bouncer.conninfo

    def connect(self, dbname=None):
        return psycopg2.connect(host=self.env["PGHOST"], port=self.env["PGPORT"], user=self.env["PGUSER"],
                                dbname=dbname or self.name)

    def reconnect(self):
        """A new connection, after the server was restarted under the test."""
        try:
            self.conn.close()
        except Exception:
            pass
        self.conn = self.connect(self.name)
        self.conn.autocommit = True

    def q(self, sql, *args):
        with self.conn.cursor() as c:
            c.execute(sql, args)
            return c.fetchall() if c.description else None

    def one(self, sql, *args):
        rows = self.q(sql, *args)
        return rows[0][0] if rows else None

    def add_due(self, ref, msisdn, days_ago=2, **cols):
        """Insert a due row whose due_date is days_ago local days in the past; returns its id."""
        cols.setdefault("amount_cents", 12345)
        names = ["account_ref", "msisdn", "due_date"] + list(cols)
        sql = (f"INSERT INTO payremind.due_accounts ({', '.join(names)}) VALUES (%s, %s, "
               f"(now() AT TIME ZONE 'America/Toronto')::date - %s" + ", %s" * len(cols) + ") RETURNING id")
        return self.one(sql, ref, msisdn, days_ago, *cols.values())

    def states(self):
        return dict(self.q("SELECT state, count(*) FROM payremind.reminders GROUP BY state"))

    @contextlib.contextmanager
    def empty(self, suffix):
        """An empty database beside this one (no schema: for tests of migrate), its conninfo; dropped after."""
        name = f"{self.name}_{suffix}"
        admin = self.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as c:
            c.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.conninfo.replace(self.name, name)
        finally:
            with admin.cursor() as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()

    def close(self):
        if self.bouncer is not None:
            self.bouncer.stop()
        self.conn.close()
        admin = self.connect("postgres")
        admin.autocommit = True
        with admin.cursor() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()


class Sandbox:
    """The in-tree json gateway on a free port, recording every request."""

    def __init__(self, tmp, *args):
        self.tmp = tmp
        self.port_file = os.path.join(tmp, f"sandbox-{id(self)}.port")
        self.record = os.path.join(tmp, f"sandbox-{id(self)}.jsonl")
        self.proc = subprocess.Popen([os.path.join(BIN, "sandbox-gateway"), "--port", "0", "--port-file",
                                      self.port_file, "--record", self.record, "--quiet", *args],
                                     stdout=subprocess.DEVNULL, stderr=open(self.record + ".err", "w"))
        self.port = int(wait_for_file(self.port_file))
        self.url = f"http://127.0.0.1:{self.port}/sms"

    def records(self):
        """The lines written so far; one being written (no newline yet) is left for the next call."""
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.endswith("\n") and line.strip()]

    def accepted(self):
        """Accepted SMS, duplicates (same Idempotency-Key, answered from memory) left out."""
        return [r for r in self.records() if 200 <= r["status"] < 300 and not r["duplicate"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def record_time(rec):
    """The sandbox record's "t" (ISO 8601 UTC with milliseconds) as Unix seconds."""
    import datetime
    return datetime.datetime.strptime(rec["t"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def wait_for_file(path, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            with open(path) as f:
                data = f.read().strip()
            if data:
                return data
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {timeout} s")


def libconfig_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(libconfig_value(x) for x in v) + "]"
    return str(v)


def write_conf(tmp, db, gateway_url, extra="", name="payremind.conf", regions=OPEN_REGIONS, gateway=None,
               schedule=None, short_code="27022", database=None):
    """A config for the test: gateway, schedule and database take {key: value} overrides."""
    dbase = dict(conninfo=db.conninfo)
    if POOLER and "conninfo" not in (database or {}):
        dbase.update(conninfo=db.pooled_conninfo(), pooling=POOLER)
    dbase.update(database or {})
    gw = dict(dialect="json", url=gateway_url, timeout_ms=2000, connect_timeout_ms=1000, rate_per_second=0.0,
              max_in_flight=16, backoff_base_ms=1000, backoff_cap_ms=5000)
    gw.update(gateway or {})
    sched = dict(batch_size=50, lease_s=10, poll_interval_s=1)
    sched.update(schedule or {})
    group = lambda d: " ".join(f"{k} = {libconfig_value(v)};" for k, v in d.items())  # noqa: E731
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(f"""database = {{ {group(dbase)} }};
sender = {{ short_code = "{short_code}"; }};
gateway = {{ {group(gw)} }};
token = {{ base_url = "https://pay.aro.ca/p/"; }};
schedule = {{ {group(sched)} }};
listen = {{ port = 0; }};
{regions}
{extra}
""")
    return path


def daemon_cmd(conf, *args):
    return [os.path.join(BIN, "payremindd"), "-c", conf, *args]


def run_once(conf, timeout=60, check=True):
    p = subprocess.run(daemon_cmd(conf, "--once"), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"payremindd --once exited {p.returncode}: {p.stderr}")
    return p


def summary(p):
    """The --once summary line as a dict of ints."""
    line = p.stdout.strip().splitlines()[-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def ctl(conf, *args, timeout=60):
    return subprocess.run([os.path.join(BIN, "payremindctl"), "-c", conf, *args], capture_output=True, text=True,
                          timeout=timeout)


def wait_until(pred, timeout=20, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Ctx:
    """What each test gets: a temp dir, a database, and the things to clean up."""

    def __init__(self, name):
        self.tmp = tempfile.mkdtemp(prefix=f"payremind-{name}-")
        os.chmod(self.tmp, 0o755)
        self.db = Database(name)
        self.cleanups = []

    def sandbox(self, *args):
        s = Sandbox(self.tmp, *args)
        self.cleanups.append(s.stop)
        return s

    def spawn(self, cmd, **kw):
        log = open(os.path.join(self.tmp, f"proc-{len(self.cleanups)}.log"), "w+")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kw)
        p.log_path = log.name

        def stop():
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.cleanups.append(stop)
        return p

    def close(self, ok):
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception:
                traceback.print_exc()
        self.db.close()
        if ok:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"  (kept {self.tmp} for inspection)")


def main(tests):
    names = sorted(n for n in tests if n.startswith("test_") and callable(tests[n]))
    only = sys.argv[1:]
    failed = 0
    for n in names:
        if only and n not in only:
            continue
        ctx = Ctx(n)
        t0 = time.time()
        ok = False
        try:
            tests[n](ctx)
            ok = True
            print(f"ok   {n} ({time.time() - t0:.1f} s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {n} ({time.time() - t0:.1f} s)", flush=True)
            traceback.print_exc()
        finally:
            ctx.close(ok)
    sys.exit(1 if failed else 0)


def write_secret(tmp, name, value):
    """A secret file (mode 0600, trailing newline) for gateway.secret_file or listen.secret_file."""
    path = os.path.join(tmp, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


def set_listen(conf, **keys):
    """Replace the `listen` group of a write_conf file with these keys (port stays 0 unless given)."""
    group = dict(port=0)
    group.update(keys)
    with open(conf) as f:
        text = f.read()
    new = "listen = { " + " ".join(f"{k} = {libconfig_value(v)};" for k, v in group.items()) + " };"
    assert "listen = { port = 0; };" in text, "set_listen needs a config from write_conf"
    with open(conf, "w") as f:
        f.write(text.replace("listen = { port = 0; };", new, 1))
    return conf


def http_request(port, method, path, body=None, headers=None):
    """One HTTP/1.1 request to 127.0.0.1:port: (status, headers with lower-case names, body text)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def free_port():
    """A TCP port free on loopback right now (for a daemon's listener)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_9_mid_batch(ctx, conf, numbers, receivers, max_in_flight, lease_s, kill_after=4.0):
    """SPEC §5 crash policy with a dialect that has no idempotency key: run a daemon on a rate-limited
    batch, kill -9 it after kill_after seconds, restart one once the leases have expired, and wait until
    every reminder is final. receivers() lists the number of every SMS the gateway took. Checks that
    each number got at most one SMS, that only requests that may really have been in flight became
    `unknown` (at most max_in_flight), and that every other reminder was sent exactly once and on its
    first counted attempt. Returns the figures for the test's own assertions and the closing note."""
    db = ctx.db
    p = ctx.spawn(daemon_cmd(conf))
    time.sleep(kill_after)
    p.kill()
    p.wait(10)
    at_kill = dict(db.q("SELECT state, count(*) FROM payremind.reminders GROUP BY state"))
    leased = db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'queued' AND lease_owner IS NOT NULL")
    time.sleep(lease_s + 1)
    p = ctx.spawn(daemon_cmd(conf))
    final = "SELECT count(*) FROM payremind.reminders WHERE state IN ('sent', 'unknown', 'delivered')"
    wait_until(lambda: db.one(final) == len(numbers), timeout=120, what=f"{len(numbers)} reminders final")
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0
    got = collections.Counter(receivers())
    states = db.states()
    unknown = {r[0] for r in db.q("SELECT msisdn FROM payremind.reminders WHERE state = 'unknown'")}
    sent = {r[0] for r in db.q("SELECT msisdn FROM payremind.reminders WHERE state IN ('sent', 'delivered')")}
    figures = dict(at_kill=at_kill, leased_at_kill=leased, final=states, received=sum(got.values()))
    print(f"  kill -9 mid-batch: {figures}", flush=True)
    assert max(got.values()) == 1, got.most_common(3)
    assert sent | unknown == set(numbers) and not sent & unknown, figures
    assert set(got) >= sent and set(got) <= set(numbers), figures
    # What was waiting (rate limiter, slots) at the kill went back to queued and out once; only
    # requests that may have left the daemon are `unknown`.
    assert at_kill.get("sending", 0) <= max_in_flight, figures
    assert len(unknown) <= max_in_flight, figures
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE state = 'sent' AND attempts <> 1") == 0
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE body IS NOT NULL OR link_token IS NOT NULL") == 0
    return figures
