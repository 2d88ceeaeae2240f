"""A real Kannel 1.4.5 (bearerbox + smsbox + fakesmsc) in a temp dir on free loopback ports, for
integration tests of the kannel dialect. See /work/shared/KANNEL.md for what real Kannel does.

    k = Kannel(tmp)                # started; k.stop() kills only the pids it started
    k.sendsms_url, k.username, k.secret_file()
    k.received()                   # MTs the fake SMSC got, concatenated parts joined, text decoded
    k.inject_mo("+15145550123", "27022", "STOP")   # needs get_url to reach a listener
"""

import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import namedtuple

BEARERBOX = os.environ.get("KANNEL_BEARERBOX", "/usr/sbin/bearerbox")
SMSBOX = os.environ.get("KANNEL_SMSBOX", "/usr/sbin/smsbox")
FAKESMSC = os.environ.get("KANNEL_FAKESMSC", "/usr/lib/kannel/test/fakesmsc")

# fakesmsc's stderr line for each MT: "... DEBUG: Got message N: <SENDER RECEIVER TYPE DATA>".
GOT_RE = re.compile(r"Got message (\d+): <(.*)>\s*$")

# One MT as the handset would see it: text decoded to str (concatenated parts joined in order);
# coding is "text", "ucs-2" or "data"; parts the number of SMS it took; raw the fakesmsc lines.
Mt = namedtuple("Mt", "sender receiver coding text parts raw")


# Children get SIGKILL when the test process dies, so nothing outlives a killed test run (setpriv
# rather than a preexec_fn, which is unsafe with the threads tests run).
SETPRIV = ["/usr/bin/setpriv", "--pdeathsig", "KILL"] if os.access("/usr/bin/setpriv", os.X_OK) else []


def available():
    """True when Kannel and its fake SMSC are installed (Debian kannel + kannel-extras)."""
    return all(os.access(p, os.X_OK) for p in (BEARERBOX, SMSBOX, FAKESMSC))


def free_ports(n):
    """n distinct loopback ports free right now (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _unquote_plus_bytes(data):
    return urllib.parse.unquote_to_bytes(data.replace("+", " "))


def _decode(coding, payload):
    """The text of one fakesmsc payload: ucs-2 is URL-encoded UTF-16BE (0x20 bytes as '+'),
    data URL-encoded bytes, text plain (both UTF-8, as Kannel holds text; fakesmsc lines are read
    as Latin-1 so the bytes survive)."""
    if coding == "text":
        return _utf8(payload.encode("latin-1"))
    raw = _unquote_plus_bytes(payload)
    if coding == "ucs-2":
        return raw.decode("utf-16-be")
    return _utf8(raw)


def _utf8(raw):
    """Kannel keeps 7-bit text as UTF-8 internally; anything else is shown byte for byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _concat_info(udh):
    """(reference, total, sequence) from a concatenation UDH (IEI 0x00 or 0x08), else None."""
    i, n = 1, len(udh)
    while i + 1 < n:
        iei, ln = udh[i], udh[i + 1]
        body = udh[i + 2:i + 2 + ln]
        if iei == 0x00 and ln == 3:
            return body[0], body[1], body[2]
        if iei == 0x08 and ln == 4:
            return (body[0] << 8) | body[1], body[2], body[3]
        i += 2 + ln
    return None


def parse_line(line):
    """(sender, receiver, coding, text, udh bytes or None) of one fakesmsc "Got message" body.
    A UDH part's payload ("udh <udh> data <payload>") is kept as bytes in text: its coding is
    only known once the parts are joined."""
    sender, receiver, kind, rest = line.split(" ", 3)
    if kind == "udh":
        udh, _, payload = rest.partition(" ")
        if payload.startswith("data "):
            payload = payload[5:]
        return sender, receiver, "udh", _unquote_plus_bytes(payload), _unquote_plus_bytes(udh)
    return sender, receiver, kind, _decode(kind, rest), None


def _join_parts(parts):
    """(coding, text) of the joined payloads of a concatenated message. fakesmsc does not say
    whether they were UCS-2: we take them as UTF-16BE when at least a quarter of the high bytes
    are 0 (Latin text, as our templates are; GSM-7 text has no NUL but '@'), else as 8-bit."""
    payload = b"".join(parts)
    if len(payload) % 2 == 0 and payload[0::2].count(0) * 4 >= len(payload) // 2 > 0:
        return "ucs-2", payload.decode("utf-16-be")
    return "text", _decode("data", urllib.parse.quote_from_bytes(payload))


def parse_received(lines):
    """Mt list from fakesmsc "Got message" bodies, in arrival order; concatenated parts joined
    (listed when their last part arrives; incomplete ones are left out)."""
    out, pending = [], {}
    for raw in lines:
        sender, receiver, coding, text, udh = parse_line(raw)
        info = _concat_info(udh) if udh else None
        if info is None:
            if udh is not None:
                coding, text = _join_parts([text])
            out.append(Mt(sender, receiver, coding, text, 1, [raw]))
            continue
        ref, total, seq = info
        key = (sender, receiver, ref, total)
        got = pending.setdefault(key, {})
        got[seq] = (text, raw)
        if len(got) == total:
            del pending[key]
            seqs = sorted(got)
            coding, joined = _join_parts([got[s][0] for s in seqs])
            out.append(Mt(sender, receiver, coding, joined, total, [got[s][1] for s in seqs]))
    return out


class KannelError(Exception):
    pass


class Kannel:
    """bearerbox, a fake SMSC for MT, smsbox; optionally an MO fake SMSC and an sms-service.

    get_url: the sms-service get-url (Kannel escapes such as %p %P %a %I), default none (no service;
    injected MOs then get Kannel's default "no service" handling).
    white_list_sender_regex: bearerbox core white-list-sender-regex (other senders: "Not routable";
    it applies to MO senders too, so inject_mo needs it unset or matching the phone).
    password: the sendsms-user password; secret_file(wrong=True) gives the daemon a wrong one.
    sendsms_max_messages: the sendsms-user max-messages (longer texts are cut silently)."""

    def __init__(self, tmp, username="payremind", password="kannel-pw-0600", get_url=None,
                 white_list_sender_regex=None, sendsms_max_messages=10, log_level=2, start=True,
                 attempts=3):
        self.tmp = tmp
        self.dir = os.path.join(tmp, f"kannel-{os.getpid()}-{id(self)}")
        os.makedirs(self.dir, exist_ok=True)
        self.username = username
        self.password = password
        self.admin_password = "admin-" + password
        self.get_url = get_url
        self.white_list_sender_regex = white_list_sender_regex
        self.sendsms_max_messages = sendsms_max_messages
        self.log_level = log_level
        self.procs = {}
        self._logs = []
        self.mt_log = os.path.join(self.dir, "fakesmsc-mt.err")  # fakesmsc's stderr: what it got
        if start:
            self.start(attempts)

    # -- configuration -------------------------------------------------------------------------

    def _conf_text(self):
        d = self.dir
        core_extra = ""
        if self.white_list_sender_regex is not None:
            core_extra += f'white-list-sender-regex = "{self.white_list_sender_regex}"\n'
        service = ""
        if self.get_url is not None:
            service = f"""
group = sms-service
keyword = default
catch-all = true
max-messages = 0
omit-empty = true
get-url = "{self.get_url}"
"""
        return f"""group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = "{self.admin_password}"
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = "127.0.0.1"
log-file = "{d}/bearerbox.log"
log-level = {self.log_level}
dlr-storage = internal
sms-resend-retry = 0
{core_extra}
group = smsc
smsc = fake
smsc-id = mt
host = 127.0.0.1
port = {self.mt_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"
denied-smsc-id = mo

group = smsc
smsc = fake
smsc-id = mo
allowed-smsc-id = mo
host = 127.0.0.1
port = {self.mo_port}
our-host = 127.0.0.1
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{d}/smsbox.log"
log-level = {self.log_level}
mo-recode = true

group = sendsms-user
username = "{self.username}"
password = "{self.password}"
max-messages = {self.sendsms_max_messages}
concatenation = true
{service}"""

    @property
    def sendsms_url(self):
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    def secret_file(self, wrong=False):
        """A 0600 file holding the sendsms password (or a wrong one) for gateway.secret_file."""
        path = os.path.join(self.dir, "wrong.secret" if wrong else "kannel.secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(("not-" + self.password if wrong else self.password) + "\n")
        os.chmod(path, 0o600)
        return path

    def gateway(self, wrong_password=False, **over):
        """write_conf's gateway overrides for this Kannel. smsbox listens with a backlog of 10: a
        burst of more new connections waits for SYN retransmits (1 s, then 3 s), so keep
        max_in_flight under 10 (the connections are kept alive) and the connect timeout above 1 s."""
        gw = dict(dialect="kannel", url=self.sendsms_url, username=self.username,
                  secret_file=self.secret_file(wrong_password), max_in_flight=8, connect_timeout_ms=3000)
        gw.update(over)
        return gw

    # -- processes -----------------------------------------------------------------------------

    def _spawn(self, name, cmd, stdin=subprocess.DEVNULL):
        log = open(os.path.join(self.dir, f"{name}.err"), "ab")
        self._logs.append(log)
        # A session of its own: a terminal's ^C reaches the test, whose cleanup then runs stop().
        p = subprocess.Popen(SETPRIV + cmd, stdin=stdin, stdout=log, stderr=log, cwd=self.dir,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def _kill(self, name):
        """SIGKILL one of ours by its pid (Kannel keeps nothing we need: no store file, DLRs in memory)."""
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            p.kill()
            p.wait(10)
        if p.stdin:
            p.stdin.close()

    def start(self, attempts=3):
        """Start everything on fresh ports; a port taken by someone else meanwhile means a new try."""
        for i in range(attempts):
            (self.admin_port, self.smsbox_port, self.mt_port, self.mo_port,
             self.sendsms_port) = free_ports(5)
            self.conf = os.path.join(self.dir, "kannel.conf")
            with open(self.conf, "w") as f:
                f.write(self._conf_text())
            try:
                self._start_once()
                return
            except KannelError:
                self.stop()
                if i == attempts - 1:
                    raise

    def _start_once(self):
        self._spawn("bearerbox", [BEARERBOX, "-v", "4", self.conf])
        self._wait(lambda: self._admin("status.txt") is not None, "bearerbox admin", "bearerbox")
        self.start_mt_smsc()
        self.start_smsbox()

    def start_mt_smsc(self):
        """The MT fake SMSC: it stays up while its stdin (a pipe we hold) is open."""
        self._spawn("fakesmsc-mt", [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.mt_port), "-m", "0"],
                    stdin=subprocess.PIPE)
        self._wait(lambda: self.smsc_state("mt") == "online", "fake SMSC online", "fakesmsc-mt")

    def stop_mt_smsc(self):
        """Take the MT SMSC link down (sendsms then answers "3: Queued for later delivery")."""
        self._kill("fakesmsc-mt")
        self._wait(lambda: self.smsc_state("mt") != "online", "fake SMSC offline")

    def start_smsbox(self):
        self._spawn("smsbox", [SMSBOX, "-v", "4", self.conf])
        self._wait(self._sendsms_answers, "smsbox sendsms", "smsbox")

    def stop_smsbox(self):
        """smsbox gone: sendsms is then a refused connection."""
        self._kill("smsbox")

    def stop(self):
        """Kill what we started (smsbox first so it does not spin on a lost bearerbox)."""
        for name in ("fakesmsc-mo", "smsbox", "fakesmsc-mt", "bearerbox"):
            self._kill(name)
        for log in self._logs:
            log.close()
        self._logs = []

    def _wait(self, pred, what, proc=None, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if pred():
                return
            if proc is not None and self.procs[proc].poll() is not None:
                raise KannelError(f"{proc} exited {self.procs[proc].returncode} before {what}: "
                                  f"see {self.dir}")
            time.sleep(0.05)
        raise KannelError(f"timed out waiting for {what}: see {self.dir}")

    def _admin(self, command):
        url = f"http://127.0.0.1:{self.admin_port}/{command}?password={urllib.parse.quote(self.admin_password)}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError):
            return None

    def status(self):
        """bearerbox's admin status.txt, or None while it does not answer."""
        return self._admin("status.txt")

    def smsc_state(self, smsc_id):
        """"online", "connecting", "re-connecting", ... of one SMSC link from status.txt."""
        m = re.search(rf"^\s*{re.escape(smsc_id)}\[{re.escape(smsc_id)}\]\s+FAKE:\d+ \(([a-z-]+)",
                      self.status() or "", re.M)
        return m.group(1) if m else None

    def _sendsms_answers(self):
        # No credentials: any HTTP answer (403) proves smsbox is serving and connected.
        try:
            urllib.request.urlopen(self.sendsms_url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except (OSError, urllib.error.URLError):
            return False

    def sendsms(self, **params):
        """(status, body) of a sendsms GET with our credentials and params (for checking the fixture)."""
        q = dict(username=self.username, password=self.password)
        q.update(params)
        try:
            with urllib.request.urlopen(self.sendsms_url + "?" + urllib.parse.urlencode(q), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # -- traffic -------------------------------------------------------------------------------

    def sendsms_requests(self):
        """sendsms requests that passed authentication so far (smsbox's info log: log_level=1)."""
        assert self.log_level <= 1, "sendsms_requests needs Kannel(log_level=1)"
        with open(os.path.join(self.dir, "smsbox.log"), encoding="latin-1") as f:
            return sum("sendsms used by <" in line for line in f)

    def received_lines(self):
        """The bodies of fakesmsc's "Got message" lines, in order."""
        if not os.path.exists(self.mt_log):
            return []
        with open(self.mt_log, encoding="latin-1") as f:
            return [m.group(2) for m in map(GOT_RE.search, f) if m]

    def received(self):
        """Every MT the fake SMSC got, as Mt tuples, concatenated parts joined."""
        return parse_received(self.received_lines())

    def wait_received(self, n, timeout=30):
        """The received MTs once there are at least n (KannelError after timeout)."""
        end = time.time() + timeout
        while True:
            got = self.received()
            if len(got) >= n:
                return got
            if time.time() > end:
                raise KannelError(f"{len(got)} of {n} MTs reached the fake SMSC in {timeout} s")
            time.sleep(0.05)

    def inject_mo(self, sender, receiver, text, timeout=10):
        """Send one inbound SMS through the MO fake SMSC (allowed-smsc-id mo: only MOs use it, and
        Kannel's own replies go back through it, never to the MT SMSC) and return once bearerbox
        has counted it received. fakesmsc stays connected after its message: it is then killed."""
        before = self._sms_received()
        self._kill("fakesmsc-mo")
        self._spawn("fakesmsc-mo", [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.mo_port), "-m", "1",
                                    f"{sender} {receiver} text {text}"])
        try:
            self._wait(lambda: self._sms_received() > before, "MO received by bearerbox", "fakesmsc-mo",
                       timeout=timeout)
        finally:
            self._kill("fakesmsc-mo")

    def _sms_received(self):
        m = re.search(r"^SMS: received (\d+)", self.status() or "", re.M)
        return int(m.group(1)) if m else -1


def inject_mo_coded(k, sender, receiver, kind, payload, timeout=10):
    """Kannel.inject_mo for another fake SMSC message type: "ucs2" (payload URL-encoded UTF-16BE, as a
    phone sends any text outside GSM-7; smsbox's mo-recode hands it on as UTF-8) or "data" (URL-encoded
    8-bit). Kannel 1.4.5's fake SMSC reads "ucs2", not the "ucs-2" it writes for MTs."""
    before = k._sms_received()
    k._kill("fakesmsc-mo")
    k._spawn("fakesmsc-mo", [FAKESMSC, "-H", "127.0.0.1", "-r", str(k.mo_port), "-m", "1",
                             f"{sender} {receiver} {kind} {payload}"])
    try:
        k._wait(lambda: k._sms_received() > before, "MO received by bearerbox", "fakesmsc-mo", timeout=timeout)
    finally:
        k._kill("fakesmsc-mo")
