"""Debian's PgBouncer (1.18) in front of the test's database, as the tests need it: started as the
postgres user (PgBouncer refuses root), on a free loopback port, in transaction (or session) mode with a
small pool so that clients really share server connections; it can be killed and started again."""

import os
import pwd
import shutil
import subprocess
import tempfile
import time

import harness

PGBOUNCER = "/usr/sbin/pgbouncer"


class PgBouncer:
    def __init__(self, ctx, db, pool_mode="transaction", pool_size=2, dbname=None):
        assert os.path.exists(PGBOUNCER), "pgbouncer is missing: scripts/deps.sh installs it"
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix="payremind-pgbouncer-")
        self.port = harness.free_port()
        pg = pwd.getpwnam("postgres")
        env = db.env
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        with open(self.ini, "w") as f:
            f.write(f"""[databases]
{dbname or db.name} = host={env['PGHOST']} port={env['PGPORT']} dbname={dbname or db.name} user={env['PGUSER']}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 500
server_reset_query =
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        os.chmod(self.dir, 0o755)
        for name in os.listdir(self.dir):
            os.chown(os.path.join(self.dir, name), pg.pw_uid, pg.pw_gid)
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        self.conninfo = f"host=127.0.0.1 port={self.port} user={env['PGUSER']} dbname={dbname or db.name}"
        self.proc = None
        self.start()
        if ctx is not None:
            ctx.cleanups.append(self.stop)

    def _cmd(self):
        cmd = [PGBOUNCER, self.ini]
        if os.getuid() == 0:
            cmd = [PGBOUNCER, "-u", "postgres", self.ini]
        return cmd

    def start(self):
        self.proc = subprocess.Popen(self._cmd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while time.time() < end:
            try:
                import psycopg2
                psycopg2.connect(self.conninfo, connect_timeout=1).close()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise AssertionError("pgbouncer exited: " + self.log())
                time.sleep(0.05)
        raise AssertionError("pgbouncer did not answer: " + self.log())

    def kill(self):
        """SIGKILL: every client and server connection drops at once."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(os.path.join(self.dir, "pgbouncer.log")) as f:
                return f.read()
        except OSError:
            return ""
