"""payremind behind Debian's PgBouncer 1.18 (SPEC §8): the default settings behind a transaction pooler
stop at once with exit 78 naming database.pooling; migrations serialise through the pooler. The pooled
ctest runs (integration.pooled.*) run the daemon, once, ctl, operators and listener suites through it."""

import os
import subprocess
import sys
import time

import psycopg2

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import pgbouncer  # noqa: E402
from harness import daemon_cmd, write_conf  # noqa: E402


def test_the_default_pooling_behind_a_transaction_pooler_exits_78_naming_the_key(ctx):
    db = ctx.db
    gw = ctx.sandbox()
    db.add_due("P-1", "+15147100001")
    # One server connection: the daemon's two connections share it, as under any busy pooler.
    bouncer = pgbouncer.PgBouncer(ctx, db, pool_size=1)
    conf = write_conf(ctx.tmp, db, gw.url, database={"conninfo": bouncer.conninfo, "pooling": "none"})
    for args in (["--once"], []):
        t0 = time.time()
        p = subprocess.run(daemon_cmd(conf, *args), capture_output=True, text=True, timeout=60)
        assert p.returncode == 78, (args, p.returncode, p.stderr)
        assert time.time() - t0 < 15, time.time() - t0
        assert 'set database.pooling = "transaction"' in p.stderr, p.stderr
        lines = [line for line in p.stderr.splitlines() if "database.pooling" in line]
        assert len(lines) == 1 and ("42P05" in lines[0] or "already exists" in lines[0]
                                    or "does not exist" in lines[0]), lines
    assert gw.accepted() == [] and db.states() == {}
    # With pooling = "transaction" the same pooler works (fresh server connections: the runs above left
    # their session SETs and prepared statements on the pooled one, as the issue saw leak to others).
    bouncer.kill()
    bouncer.start()
    pooled = write_conf(ctx.tmp, db, gw.url, name="pooled.conf",
                        database={"conninfo": bouncer.conninfo, "pooling": "transaction"})
    p = harness.run_once(pooled)
    assert harness.summary(p)["sent"] == 1
    assert [r["to"] for r in gw.accepted()] == ["+15147100001"]
    # The role lacks the planner settings the daemon cannot SET per session: it says how to set them.
    warn = [line for line in p.stderr.splitlines() if "enable_seqscan is on" in line]
    assert len(warn) == 1 and "ALTER ROLE" in warn[0], p.stderr
    db.q(f'ALTER ROLE postgres IN DATABASE "{db.name}" SET enable_seqscan = off')
    db.q(f'ALTER ROLE postgres IN DATABASE "{db.name}" SET jit = off')
    bouncer.kill()  # role settings apply to new server connections
    bouncer.start()
    db.add_due("P-2", "+15147100002")
    p = harness.run_once(pooled)
    assert harness.summary(p)["sent"] == 1 and "enable_seqscan" not in p.stderr, p.stderr


def test_a_bad_pooling_value_is_a_configuration_error(ctx):
    conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", database={"pooling": "statement"})
    p = subprocess.run(daemon_cmd(conf, "-n"), capture_output=True, text=True)
    assert p.returncode == 78 and "database.pooling" in p.stderr and '"statement"' in p.stderr, p.stderr


def test_four_migrates_at_once_through_the_pooler_all_succeed_and_leave_no_lock(ctx):
    with ctx.db.empty("mig") as conninfo:
        bouncer = pgbouncer.PgBouncer(ctx, ctx.db, pool_size=2, dbname=ctx.db.name + "_mig")
        conf = write_conf(ctx.tmp, ctx.db, "http://127.0.0.1:9/sms", name="mig.conf",
                          database={"conninfo": bouncer.conninfo, "pooling": "transaction"})
        procs = [subprocess.Popen([os.path.join(harness.BIN, "payremindctl"), "-c", conf, "migrate"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        assert all(rc == 0 for _, _, rc in outs), outs
        # Each migration once, whichever process applied it (they take turns migration by migration).
        applied = [int(out.split()[1]) if out.startswith("applied ") else 0 for out, _, _ in outs]
        assert sum(applied) == len(os.listdir(os.path.join(harness.SRC, "sql"))), outs
        conn = psycopg2.connect(conninfo)
        conn.autocommit = True
        with conn.cursor() as c:
            c.execute("SELECT version, count(*) FROM payremind.schema_migrations GROUP BY version HAVING count(*) > 1")
            assert c.fetchall() == []
            c.execute("SELECT count(*) FROM payremind.schema_migrations")
            assert c.fetchone()[0] == len(os.listdir(os.path.join(harness.SRC, "sql")))
            c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                      " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            assert c.fetchone()[0] == 0
        conn.close()
        bouncer.stop()


harness.main(globals())
