"""A database blip loses nothing (SPEC §8): two daemons sending at a paced rate lose their database for
5 s (PgBouncer killed, or PostgreSQL stopped with -m fast or -m immediate), 20 more rows arrive, and
afterwards every row is sent exactly once, with 0 `unknown`, through the json dialect, Twilio and a real
Kannel. While the database is away nothing new is sent; answers already received wait in memory and
are written when it is back."""

import collections
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import kannel  # noqa: E402
import pgbouncer  # noqa: E402
from fake_twilio import FakeTwilio  # noqa: E402
from harness import daemon_cmd, wait_until, write_conf  # noqa: E402

ROWS, LATE = 60, 20
RATE = 20.0  # segments/s shared by the two daemons (2-segment texts): the batch lasts about 8 s, the outage inside


def gateway(ctx, kind):
    """(gateway overrides for write_conf, the gateway's url, receivers(): one number per SMS it took)."""
    if kind == "json":
        gw = ctx.sandbox()
        # Every accepted request counts, a repeat under the same Idempotency-Key too: none is expected.
        return {}, gw.url, lambda: [r["to"] for r in gw.records() if 200 <= r["status"] < 300]
    if kind == "twilio":
        fake = FakeTwilio()
        ctx.cleanups.append(fake.stop)
        secret = harness.write_secret(ctx.tmp, "twilio-token", fake.auth_token)
        return (dict(dialect="twilio", username=fake.account_sid, secret_file=secret), fake.url,
                lambda: [m["to"] for m in fake.created()])
    assert kannel.available(), "Kannel is not installed: apt-get install kannel kannel-extras"
    k = kannel.Kannel(ctx.tmp)
    ctx.cleanups.append(k.stop)
    return k.gateway(), k.sendsms_url, lambda: [m.receiver for m in k.received()]


def run(ctx, kind, outage):
    db = ctx.db
    prefix = {"json": "+1450701", "twilio": "+1450702", "kannel": "+1450703"}[kind]
    numbers = [f"{prefix}{i:04d}" for i in range(ROWS + LATE)]
    gw_over, url, receivers = gateway(ctx, kind)
    # The fixture's server runs with synchronous_commit = off for speed: a commit it acknowledged could
    # vanish in an immediate stop, which PostgreSQL's default (on) never allows. This database has it on.
    db.q(f'ALTER DATABASE "{db.name}" SET synchronous_commit = on')
    database = {}
    bouncer = None
    if outage == "pgbouncer":
        bouncer = pgbouncer.PgBouncer(ctx, db)
        database = {"conninfo": bouncer.conninfo, "pooling": "transaction"}
    gw_over.update(rate_per_second=RATE, max_in_flight=4)
    for i, n in enumerate(numbers[:ROWS]):
        db.add_due(f"O-{i}", n)
    confs = [write_conf(ctx.tmp, db, url, name=f"{name}.conf", gateway=gw_over, database=database,
                        schedule={"lease_s": 10}) for name in ("a", "b")]
    daemons = [ctx.spawn(daemon_cmd(c)) for c in confs]
    wait_until(lambda: len(receivers()) >= 15, timeout=30, what="the first SMS")
    before = len(receivers())
    if bouncer is not None:
        bouncer.kill()
        time.sleep(1.0)
        during = len(receivers())
        for i, n in enumerate(numbers[ROWS:]):  # billing reaches PostgreSQL directly
            db.add_due(f"L-{i}", n)
        time.sleep(4.0)
        stalled = len(receivers())
        bouncer.start()
    else:
        started = db.one("SELECT pg_postmaster_start_time()")
        done = []
        t = threading.Thread(target=lambda: done.append(subprocess.run(
            [os.path.join(harness.SRC, "tests", "pg_fixture.sh"), "outage", harness.STATE, outage, "5"],
            capture_output=True, text=True)))
        t.start()
        time.sleep(1.0)
        during = len(receivers())
        time.sleep(3.5)
        stalled = len(receivers())
        t.join(60)
        assert not t.is_alive() and done and done[0].returncode == 0, done
        db.reconnect()
        assert db.one("SELECT pg_postmaster_start_time()") > started, "PostgreSQL did not restart"
        for i, n in enumerate(numbers[ROWS:]):
            db.add_due(f"L-{i}", n)
    final = "SELECT count(*) FROM payremind.reminders WHERE state IN ('sent', 'delivered', 'unknown', 'failed')"
    wait_until(lambda: db.one(final) == len(numbers), timeout=120, what=f"{len(numbers)} reminders final")
    for p in daemons:
        p.terminate()
        p.wait(30)
        # Every log line is one line with its priority, libpq's multi-line messages included.
        with open(p.log_path) as f:
            lines = f.read().splitlines()
        assert lines and all(line.startswith("<") for line in lines), [ln for ln in lines if not ln.startswith("<")]
    got = collections.Counter(receivers())
    states = db.states()
    figures = dict(dialect=kind, outage=outage, sent_before=before, sent_1s_in=during, sent_4_5s_in=stalled,
                   final=states, received=sum(got.values()), numbers=len(got))
    print(f"  {figures}", flush=True)
    # Nothing new started once the database was gone (requests already in flight may still finish).
    assert stalled - during <= 8, figures
    assert states == {"sent": len(numbers)}, figures
    assert set(got) == set(numbers) and max(got.values()) == 1, got.most_common(3)
    assert db.one("SELECT count(*) FROM payremind.reminders WHERE attempts <> 1") == 0, figures
    return figures


# One test per dialect and outage: test_json_survives_pgbouncer_killed_for_5_s, …_a_fast_postgresql_stop_…
OUTAGES = {"pgbouncer": "pgbouncer_killed_for_5_s", "fast": "a_fast_postgresql_stop_of_5_s",
           "immediate": "an_immediate_postgresql_stop_of_5_s"}
for _kind in ("json", "twilio", "kannel"):
    for _outage, _what in OUTAGES.items():
        globals()[f"test_{_kind}_survives_{_what}"] = (lambda k, o: lambda ctx: run(ctx, k, o))(_kind, _outage)


harness.main(globals())
