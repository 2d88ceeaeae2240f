"""Installation: `cmake --install --prefix /usr` puts every file where docs/operations-install.md says, and the
installed unit passes `systemd-analyze verify` (and keeps its hardening)."""

import filecmp
import glob
import os
import re
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

INSTALL_SECTION = "## Installing and running under systemd"


def install(ctx, prefix="/usr", root=None):
    """cmake --install of the build under test into DESTDIR=root; returns root."""
    root = root or os.path.join(ctx.tmp, "root")
    env = dict(os.environ, DESTDIR=root)
    p = subprocess.run(["cmake", "--install", harness.BIN, "--prefix", prefix], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return root


def readme_install_table():
    """The paths in the first column of the install table of docs/operations-install.md (a trailing /
    marks a directory)."""
    with open(os.path.join(harness.SRC, "docs", "operations-install.md")) as f:
        text = f.read()
    assert INSTALL_SECTION in text, "docs/operations-install.md has no install section"
    section = text.split(INSTALL_SECTION, 1)[1].split("\n## ", 1)[0]
    table = section.split("| path | what |", 1)[1].split("\n\n", 1)[0]
    paths = []
    for row in table.splitlines()[2:]:
        paths += re.findall(r"`(/[^`]+)`", row.split("|")[1])
    assert paths, "the install table is empty"
    return paths


def installed_files(root):
    out = set()
    for d, _, files in os.walk(root):
        out.update("/" + os.path.relpath(os.path.join(d, f), root) for f in files)
    return out


def sql_files():
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(harness.SRC, "sql", "*.sql")))


def test_install_puts_every_file_where_the_install_docs_say(ctx):
    root = install(ctx)
    listed = readme_install_table()
    for must in ["/usr/sbin/payremindd", "/usr/bin/payremindctl", "/usr/lib/systemd/system/payremindd.service",
                 "/etc/payremind/payremind.conf", "/usr/share/payremind/sql/", "/usr/share/payremind/deploy/",
                 "/usr/share/man/man8/payremindd.8", "/usr/share/man/man1/payremindctl.1"]:
        assert must in listed, f"the install table does not list {must}"
    got = installed_files(root)
    covered = set()
    for path in listed:
        if path.endswith("/"):
            inside = {f for f in got if f.startswith(path)}
            assert inside, f"{path} is empty or missing"
            covered |= inside
        else:
            assert path in got, f"{path} (the install table) was not installed; installed: {sorted(got)}"
            covered.add(path)
    assert got == covered, f"installed but not in the install table: {sorted(got - covered)}"
    for exe in ["/usr/sbin/payremindd", "/usr/bin/payremindctl"]:
        assert os.stat(root + exe).st_mode & stat.S_IXOTH, exe
    # The copies are the sources: every migration, the example config (world-readable: no secret in it).
    assert sorted(os.listdir(root + "/usr/share/payremind/sql")) == sql_files()
    for name in sql_files():
        assert filecmp.cmp(os.path.join(harness.SRC, "sql", name), f"{root}/usr/share/payremind/sql/{name}",
                           shallow=False), name
    conf = root + "/etc/payremind/payremind.conf"
    assert filecmp.cmp(os.path.join(harness.SRC, "conf", "payremind.conf"), conf, shallow=False)
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    # The installed binaries run, and the installed example configuration is valid as shipped.
    p = subprocess.run([root + "/usr/sbin/payremindd", "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("payremindd "), p.stdout + p.stderr
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    p = subprocess.run([root + "/usr/sbin/payremindd", "-n", "-c", conf], capture_output=True, text=True,
                       timeout=30, env=env)
    assert p.returncode == 0 and p.stdout.strip() == "configuration OK", p.stdout + p.stderr


def test_installed_unit_points_at_the_installed_files(ctx):
    root = install(ctx)
    unit = open(root + "/usr/lib/systemd/system/payremindd.service").read()
    assert re.search(r"^ExecStart=/usr/sbin/payremindd -c /etc/payremind/payremind\.conf$", unit, re.M), unit
    for cred in ["gateway_secret", "listen_secret"]:
        assert re.search(rf"^LoadCredential={cred}:/etc/payremind/{cred}$", unit, re.M), cred
    # Another prefix: the unit follows it.
    other = install(ctx, prefix="/opt/payremind", root=os.path.join(ctx.tmp, "opt-root"))
    unit = open(other + "/opt/payremind/lib/systemd/system/payremindd.service").read()
    assert re.search(r"^ExecStart=/opt/payremind/sbin/payremindd -c /etc/opt/payremind/payremind/payremind\.conf$",
                     unit, re.M), unit
    assert os.path.exists(other + "/opt/payremind/sbin/payremindd")
    assert os.path.exists(other + "/etc/opt/payremind/payremind/payremind.conf")


def test_reinstall_keeps_an_edited_config(ctx):
    root = install(ctx)
    conf = root + "/etc/payremind/payremind.conf"
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    install(ctx, root=root)
    assert open(conf).read().endswith("# edited by the operator\n")
    assert filecmp.cmp(os.path.join(harness.SRC, "conf", "payremind.conf"),
                       root + "/etc/payremind/payremind.conf.example", shallow=False)


def systemd_analyze():
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze not found: install the Debian package systemd (scripts/deps.sh does)"
    return exe


def verify(root, unit_text, tag):
    """systemd-analyze verify of unit_text (alone in a directory named by tag), with the man pages looked
    up in the installed tree."""
    d = os.path.join(os.path.dirname(root), "verify-" + tag)
    os.makedirs(d)
    path = os.path.join(d, "payremindd.service")
    with open(path, "w") as f:
        f.write(unit_text)
    env = dict(os.environ, MANPATH=root + "/usr/share/man", SYSTEMD_LOG_LEVEL="notice")
    return subprocess.run([systemd_analyze(), "verify", path], capture_output=True, text=True, timeout=120, env=env)


def test_installed_unit_passes_systemd_analyze_verify(ctx):
    root = install(ctx)
    unit = open(root + "/usr/lib/systemd/system/payremindd.service").read()
    # verify checks that ExecStart= is executable: point it at the installed copy of the binary.
    staged = unit.replace("ExecStart=/usr/sbin/payremindd", f"ExecStart={root}/usr/sbin/payremindd")
    assert staged != unit
    p = verify(root, staged, "good")
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr
    # The check has teeth here: a missing binary, an unknown key, a missing man page are all reported.
    bad = [staged.replace(f"ExecStart={root}/usr/sbin/payremindd", f"ExecStart={root}/usr/sbin/nonexistent"),
           staged.replace("[Service]\n", "[Service]\nNoSuchSetting=1\n"),
           staged.replace("man:payremindd(8)", "man:payremindd-nonexistent(8)")]
    for i, text in enumerate(bad):
        p = verify(root, text, f"bad{i}")
        assert p.returncode != 0 or p.stderr.strip(), "systemd-analyze verify accepted a broken unit"


def unit_settings(text):
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            settings.setdefault(k.strip(), []).append(v.strip())
    return settings


def test_unit_is_notify_watchdog_and_hardened(ctx):
    with open(os.path.join(harness.SRC, "systemd", "payremindd.service")) as f:
        text = f.read()
    s = unit_settings(text)
    want = {"Type": ["notify"], "Restart": ["on-failure"], "User": ["payremind"], "ProtectSystem": ["strict"],
            "ProtectHome": ["yes"], "PrivateTmp": ["yes"], "NoNewPrivileges": ["yes"], "CapabilityBoundingSet": [""]}
    for k, v in want.items():
        assert s.get(k) == v, f"{k}={s.get(k)}"
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["WatchdogSec"] and s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in s["SystemCallFilter"]
    assert sorted(c.split(":")[0] for c in s["LoadCredential"]) == ["gateway_secret", "listen_secret"]
    # systemd's own reckoning of the exposure stays "OK" (<= 2.0 out of 10).
    staged = os.path.join(ctx.tmp, "payremindd.service")
    with open(staged, "w") as f:
        f.write(text)
    p = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--threshold=20", staged],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


harness.main(globals())
