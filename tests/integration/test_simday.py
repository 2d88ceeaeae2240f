"""Simulated days (SPEC §11): up to 100k due rows over QC, ON (Toronto and Winnipeg) and BC (Vancouver) in
their real time zones, texts of 1 and 3 segments, the built-in contact rules, one or two short codes at
a fixed rate in segments per second, the daemons under the test clock (PAYREMIND_TEST_CLOCK: simulated
time that moves only when they are idle, so a day takes the time its work takes, whatever the machine).

The gateway is the in-tree sandbox recording each request with the daemon's simulated instant, and
queueing each sender code as Twilio queues a short code (--carrier-rate): each message released at the
code's rate in arrival order, dropped when its release would be after its expires_at. Each day must show:
0 messages released outside the recipient's window, 0 dropped, 0 seconds above the code's rate, the
number left for the next day equal to an offline earliest-deadline computation of the same rows, and
`payremindctl plan`'s predicted last send within max(60 s, 1%) of the real one.

Days: a Tuesday; 24 June (Québec closed, Ontario and BC open); an overloaded Sunday on which clocks
change, and the Monday after it, which starts with the rows left over; one of two codes failing at 10:00
(two daemons on one shared simulated clock)."""
import bisect
import contextlib
import datetime as dt
import fcntl
import heapq
import io
import json
import math
import mmap
import os
import random
import re
import struct
import sys
import time
import urllib.request
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from fake_twilio import num_segments  # noqa: E402
from harness import ctl, daemon_cmd, write_conf  # noqa: E402

GUARD = 60
SLACK = 30  # simulated seconds: the claim ahead of the sending, and a poll
ROWS = 100_000
ET = zoneinfo.ZoneInfo("America/Toronto")
UTC = dt.timezone.utc
# (region, time zone, share of the rows, share in French)
GROUPS = (("QC", "America/Toronto", 0.50, 0.9), ("ON", "America/Toronto", 0.25, 0.1),
          ("ON", "America/Winnipeg", 0.05, 0.1), ("BC", "America/Vancouver", 0.20, 0.05))
# SPEC §3's built-in windows, read independently of policy.c: weekday (Monday 0) -> (start h, end h)
WINDOWS = {"QC": {d: (8, 20) for d in range(6)},
           "ON": {**{d: (7, 21) for d in range(6)}, 6: (13, 17)},
           "BC": {**{d: (7, 21) for d in range(6)}, 6: (13, 17)}}
HOLIDAYS = {"QC": {dt.date(2027, 6, 24)}, "ON": set(), "BC": set()}  # the test days' only holiday
# 1 segment (GSM-7) in English, 3 (UCS-2: the apostrophe ’ is not GSM-7) in French
TEMPLATES = """templates = {
  en = "ARO: payment due on account {ref}. Pay online: {link} Reply STOP to opt out.";
  fr = "ARO : paiement attendu, dossier {ref}. En ligne : {link} ou au 1 877 322-1414. Textez ARRET pour ne plus recevoir d’avis.";
  max_segments = 3;
};"""


def window(region, zone, day):
    """The recipient's contact window on local date day: (opens, closes) in epoch seconds, or None."""
    if day in HOLIDAYS[region] or day.weekday() not in WINDOWS[region]:
        return None
    start, end = WINDOWS[region][day.weekday()]
    tz = zoneinfo.ZoneInfo(zone)
    return (dt.datetime(day.year, day.month, day.day, start, tzinfo=tz).timestamp(),
            dt.datetime(day.year, day.month, day.day, end, tzinfo=tz).timestamp())


class Rows:
    """The day's due rows in COPY format: step 0 due on `due_on` (local), a written notice long past."""

    def __init__(self, n, due_on, seed, prefix):
        rnd = random.Random(seed)
        self.rows = []
        weights = [g[2] for g in GROUPS]
        for i in range(n):
            region, zone, _, fr = rnd.choices(GROUPS, weights)[0]
            lang = "fr" if rnd.random() < fr else "en"
            # numbers unique across the days of one test (seed): no gap rule between days' rows
            self.rows.append((f"{prefix}{i:06d}", f"+1{rnd.choice((514, 416, 204, 604))}{2000000 + 150000 * seed + i:07d}",
                              lang, region, zone, due_on - dt.timedelta(days=1)))

    def copy(self, db):
        buf = io.StringIO("".join(f"{ref}\t{msisdn}\t{1000 + i % 90000}\tCAD\t{due}\t{lang}\t{region}\t{zone}\t"
                                  f"{due - dt.timedelta(days=30)}\n"
                                  for i, (ref, msisdn, lang, region, zone, due) in enumerate(self.rows)))
        with db.conn.cursor() as c:
            c.copy_expert("COPY payremind.due_accounts (account_ref, msisdn, amount_cents, currency, due_date,"
                          " language, region, time_zone, notice_sent_on) FROM STDIN", buf)


def edf_left(rows, segs, start, end, codes):
    """Offline earliest-deadline-first from `start` to `end` on codes [(segments/s, until)], each sending
    the next row when it is free (before its `until`): how many of rows (dicts with opens, deadline,
    left_over, key) cannot go. A row goes no earlier than it opens, no later than its deadline; rows left
    over from an earlier day before the others, then the earliest deadline."""
    pending = sorted(rows, key=lambda r: r["opens"])
    ready, i, sent = [], 0, 0
    free = [[start, rate, until] for rate, until in codes]
    while True:
        live = [c for c in free if c[0] < min(c[2], end)]
        if not live:
            return len(rows) - sent
        code = min(live, key=lambda c: c[0])
        t = code[0]
        while i < len(pending) and pending[i]["opens"] <= t:
            r = pending[i]
            heapq.heappush(ready, (not r["left_over"], r["deadline"], r["key"], r))
            i += 1
        if not ready:
            if i == len(pending):
                return len(rows) - sent
            code[0] = pending[i]["opens"]
            continue
        r = heapq.heappop(ready)[3]
        if r["deadline"] < t:
            continue  # its window closed first: it slips
        sent += 1
        code[0] = t + segs[r["key"]] / code[1]


class SharedClock:
    """The daemons' one simulated clock (PAYREMIND_TEST_CLOCK_SHARED, src/loop.c): a file of a header (a
    futex word, how many joined, the instant) and 8 slots (pid, idle, idle until). The test takes a slot
    too: the clock does not move while the test is busy, so it looks at the day at instants it chooses
    (the plan at the start, with the daemons live) and lets the day run to the next."""
    HEAD, SLOT, SLOTS = struct.Struct("<IId"), struct.Struct("<iid"), 8

    def __init__(self, path, start):
        self.path = path
        with open(path, "wb") as f:
            f.write(bytes(self.HEAD.size + self.SLOT.size * self.SLOTS))
        self.f = open(path, "r+b")
        self.m = mmap.mmap(self.f.fileno(), 0)
        with self._locked():  # joined by the test first: the clock starts at `start`, held
            self.HEAD.pack_into(self.m, 0, 0, 1, start)
            self.SLOT.pack_into(self.m, self.HEAD.size, os.getpid(), 0, 0.0)

    @contextlib.contextmanager
    def _locked(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.f, fcntl.LOCK_UN)

    def run_until(self, t, timeout=900):
        """Let the day run to instant t and hold it there."""
        with self._locked():
            self.SLOT.pack_into(self.m, self.HEAD.size, os.getpid(), 1, t)
        harness.wait_until(lambda: self._arrived(t), timeout=timeout, what=f"the shared clock at {t}")

    def _arrived(self, t):
        with self._locked():
            if self.HEAD.unpack_from(self.m, 0)[2] < t:
                return False
            self.SLOT.pack_into(self.m, self.HEAD.size, os.getpid(), 0, t)
            return True

    def leave(self):
        with self._locked():
            self.SLOT.pack_into(self.m, self.HEAD.size, 0, 0, 0.0)


def run_day(ctx, day, rate, seed, rows=ROWS, prefix="S", detail=None, codes=("27022",), down=None, plan_at=None):
    """Simulate local day `day` (06:30 ET to 00:30 ET the next day) with one daemon per short code in
    `codes`, each on its own gateway at `rate` segments per second, `down` = (code, instant) failing from
    then; return its figures. The plan is asked at the start, the daemons live, and again at `plan_at`:
    the last one is checked. `detail`, a dict, also gets the sends (simulated instant, account) and the
    rows as the offline computation saw them."""
    db = ctx.db
    if rows:
        Rows(rows, day, seed, prefix).copy(db)
    start = dt.datetime(day.year, day.month, day.day, 6, 30, tzinfo=ET).timestamp()
    end = start + 18 * 3600
    gws, confs = {}, {}
    for code in codes:
        gws[code] = ctx.sandbox("--carrier-rate", str(rate),
                                *(["--down-from", str(down[1])] if down and down[0] == code else []))
        confs[code] = write_conf(ctx.tmp, db, gws[code].url, regions="", extra=TEMPLATES, short_code=code,
                                 name=f"{day}-{code}.conf",
                                 gateway=dict(rate_per_second=float(rate), max_in_flight=32, timeout_ms=5000),
                                 schedule=dict(batch_size=500, lease_s=600, poll_interval_s=30,
                                               window_guard_s=GUARD))
    # what was due, as the rules see it at the start: each row's window today, and whether it is left over
    due = db.q("SELECT account_ref, region, time_zone, language, next_at = '-infinity',"
               " extract(epoch FROM next_at)::float8 FROM payremind.due_accounts WHERE next_step = 0")
    clock = SharedClock(os.path.join(ctx.tmp, f"{day}.clock"), start)
    t0 = time.time()
    env = dict(os.environ, PAYREMIND_TEST_CLOCK=f"{start} {end}",
               PAYREMIND_TEST_CLOCK_SHARED=f"{clock.path} {len(codes) + 1}")
    daemons = [ctx.spawn(daemon_cmd(confs[code]), env=env) for code in codes]
    if detail is not None:
        detail["logs"] = {code: d.log_path for code, d in zip(codes, daemons)}
    for d in daemons:
        harness.wait_until(lambda: "PAYREMIND_TEST_CLOCK: simulated time" in open(d.log_path).read(), timeout=10,
                           what="the test clock (a build with -DPAYREMIND_TEST_CLOCK=ON, as scripts/test.sh makes)")
    harness.wait_until(lambda: db.q("SELECT count(*) FROM payremind.instances WHERE stopped_at IS NULL"
                                    " AND heartbeat_at > now() - interval '20 seconds'")[0][0] == len(codes),
                       what="the daemons' first heartbeat")

    def plan(at):
        p = ctl(confs[codes[0]], "plan", "--at", dt.datetime.fromtimestamp(at, UTC).isoformat(), "--json")
        assert p.returncode == 0, p.stderr
        print("  plan at", dt.datetime.fromtimestamp(at, ET).strftime("%H:%M"), p.stderr.strip().replace("\n", "; "))
        # the groups whose window closes within the simulated day (the plan also shows tomorrow's)
        return max((ts(g["last_send"]) for g in json.loads(p.stdout)
                    if g["last_send"] and ts(g["window_closes"]).timestamp() <= end), default=None)

    predicted_last = plan(start)
    if plan_at:
        clock.run_until(plan_at)
        predicted_last = plan(plan_at)
    clock.leave()
    for d in daemons:
        assert d.wait(900) == 0, open(d.log_path).read()[-3000:]  # each stops itself at `end`
    real_s = time.time() - t0
    refs = dict(db.q("SELECT m.id::text, d.account_ref FROM payremind.reminders m JOIN payremind.due_accounts d"
                     " ON d.id = m.due_account_id WHERE m.step = 0"))
    info = {ref: (region, zone) for ref, region, zone, *_ in due}
    figures = dict(day=str(day), rate=rate, codes=len(codes), due=len(due), sent=0, out_of_window=0, dropped=0,
                   over_rate_s=0, real_s=round(real_s, 1))
    recs = [r for code in codes for r in gws[code].accepted() if r["status"] < 300 and float(r["clock"]) < end]
    over, last, free = set(), None, {}
    # each gateway queues each sender code as a carrier does (--carrier-rate: released in arrival order
    # at the code's rate, dropped after expires_at); a retry keeps the sender of its first attempt (SPEC
    # §3), so the daemon on 27022 sends the other code's retries through its own gateway
    for r in sorted(recs, key=lambda r: (r["released"], float(r["clock"]))):
        arrival, release, code = float(r["clock"]), r["released"], r["from"]
        segs = num_segments(r["text"])
        assert segs == (3 if r["text"].startswith("ARO :") else 1), (segs, r["text"])
        assert r["dropped"] or release >= max(arrival, free.get(code, 0.0)) - 1e-6, (r, free.get(code))
        if (release - arrival) * rate > rate + 3:
            over.add((code, int(arrival)))  # more than a second's worth (and one message) already queued
        if not r["dropped"]:
            free[code] = max(free.get(code, 0.0), release + segs / rate)
        region, zone = info[refs[r["reference"]]]
        local = dt.datetime.fromtimestamp(release, zoneinfo.ZoneInfo(zone))
        w = window(region, zone, local.date())
        if r["dropped"]:
            assert release > ts(r["expires_at"]).timestamp(), r
            figures["dropped"] += 1
        elif w is None or not (w[0] <= release < w[1]):
            figures["out_of_window"] += 1
        figures["sent"] += 1
        figures[f"sent_{code}"] = figures.get(f"sent_{code}", 0) + 1
        last = arrival if last is None else max(last, arrival)
        if detail is not None:
            detail.setdefault("sends", []).append((arrival, refs[r["reference"]]))
    # A second is above the code's rate when a message arriving in it finds more than a second's worth
    # of segments (and one message: the limiter grants a message once one token is there and owes the
    # rest) still queued at the carrier.
    figures["over_rate_s"] = len(over)
    # what is left, against an offline earliest-deadline computation of the same rows
    segs = {ref: (3 if lang == "fr" else 1) for ref, _, _, lang, *_ in due}
    offline = []
    for ref, region, zone, lang, never_looked, next_at in due:
        w = window(region, zone, dt.datetime.fromtimestamp(start + 12 * 3600, zoneinfo.ZoneInfo(zone)).date())
        if w is None:
            continue
        local_midnight = dt.datetime.fromtimestamp(w[0], zoneinfo.ZoneInfo(zone)).replace(hour=0).timestamp()
        offline.append(dict(key=ref, opens=max(w[0], start), deadline=w[1] - GUARD,
                            left_over=(not never_looked) and next_at is not None and next_at < local_midnight))
    # The retries that went from a failing code through the other daemon's gateway (they keep their
    # sender) used that code's pipe, not the rest's: taken as given, sent.
    given = {refs[r["reference"]] for r in recs if down and r["from"] == down[0] and float(r["clock"]) >= down[1]}
    figures["slipped_offline"] = edf_left([r for r in offline if r["key"] not in given], segs, start, end,
                                          [(rate, down[1] if down and down[0] == code else math.inf)
                                           for code in codes])
    if detail is not None:
        detail["offline"] = offline
    figures["sent_by_region"] = {}
    for r in recs:
        region = info[refs[r["reference"]]][0]
        figures["sent_by_region"][region] = figures["sent_by_region"].get(region, 0) + 1
    figures["slipped"] = len(offline) - figures["sent"]
    if down:  # what went from the failing code after it failed: retries of what its daemon had tried
        figures["from_down_after"] = len(given)
    figures["last_send"] = last
    figures["plan_last_send"] = predicted_last.timestamp() if predicted_last else None
    if last is not None and predicted_last is not None:
        figures["eta_error_s"] = round(predicted_last.timestamp() - last, 1)
        figures["eta_tolerance_s"] = round(max(60.0, 0.01 * (last - (plan_at or start))), 1)
    print("  day:", json.dumps(figures))
    return figures


def ts(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def check(f, slip_tolerance=0):
    assert f["out_of_window"] == 0 and f["dropped"] == 0 and f["over_rate_s"] == 0, f
    assert abs(f["slipped"] - f["slipped_offline"]) <= slip_tolerance, f
    assert abs(f["eta_error_s"]) <= f["eta_tolerance_s"], f
    return f


def test_a_tuesday(ctx):
    f = check(run_day(ctx, dt.date(2027, 3, 9), 5, seed=1))
    assert f["sent"] == f["due"] == ROWS and f["slipped"] == 0, f


def test_24_june_quebec_closed_ontario_and_bc_open(ctx):
    f = check(run_day(ctx, dt.date(2027, 6, 24), 5, seed=2))
    assert "QC" not in f["sent_by_region"] and f["sent_by_region"]["ON"] > 0 and f["sent_by_region"]["BC"] > 0, f


def test_the_gateways_carrier_queue_releases_each_code_at_its_rate_and_drops_after_expiry(ctx):
    # The days above rely on sandbox-gateway --carrier-rate: a queue per sender code, released in arrival
    # order (the daemon's simulated instant) at the rate in segments per second, dropped once past expires_at.
    gw = ctx.sandbox("--carrier-rate", "2")
    t0 = 1800000000.0
    en, fr = "ARO: 1 segment", "ARO : 2 segments ’" + "x" * 80  # UCS-2 (the apostrophe), 98 units: 2 segments

    def post(code, text, clock, expires):
        body = json.dumps({"from": code, "to": "+15145550100", "text": text, "reference": "r",
                           "expires_at": dt.datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        req = urllib.request.Request(gw.url, data=body.encode(), method="POST", headers={
            "Content-Type": "application/json", "X-Payremind-Test-Clock": f"{clock:.3f}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 202

    post("27022", fr, t0, t0 + 60)       # released at t0, busy 1 s
    post("27022", en, t0, t0 + 60)       # waits: t0 + 1
    post("270282", en, t0, t0 + 60)      # the other code's queue: t0
    post("27022", en, t0 + 0.2, t0 + 1)  # would go at t0 + 1.5, after its expiry at t0 + 1: dropped
    post("27022", en, t0 + 10, t0 + 60)  # the queue is empty again: at arrival
    got = [(r["from"], round(r["released"] - t0, 3), r["dropped"]) for r in gw.records()]
    assert got == [("27022", 0, False), ("27022", 1, False), ("270282", 0, False), ("27022", 1.5, True),
                   ("27022", 10, False)], got


def test_one_of_two_codes_failing_at_10(ctx):
    # A Wednesday on both codes at 2.5 segments/s each, the gateway of 270282 answering 503 from 10:00
    # ET: its daemon's breaker opens, it claims nothing (a probe's one row) and gives back what it
    # holds, and the daemon on 27022 takes the whole queue. What slips must be what an offline
    # earliest-deadline computation on two codes, one of them gone at 10:00, leaves; the plan asked at
    # 10:30 (the daemons live, the failing one's breaker open) must know the day goes on one code. From
    # 270282 after 10:00 go only the retries of what its daemon had tried (a retry keeps its sender);
    # what it handed back untried goes from 27022.
    # On one code the daemon's order is the offline one exactly. Two daemons each claim up to 10 s
    # ahead, and what the failing one held at 10:00 waits out its breaker's first hold before the other
    # takes it; and which daemon claims which rows at one simulated instant depends on the real race
    # between them. Their interleaving differs from the offline one by a few rows (6 and 50 in two runs
    # of this day), allowed up to 0.5% of the rows.
    day = dt.date(2027, 3, 10)
    ten = dt.datetime(2027, 3, 10, 10, tzinfo=ET).timestamp()
    seen = {}
    f = check(run_day(ctx, day, 2.5, seed=5, codes=("27022", "270282"), down=("270282", ten), plan_at=ten + 1800,
                      detail=seen), slip_tolerance=ROWS // 200)
    # the failing daemon gave back what it held when its breaker opened, and from then on held one
    # row at a time, its probe's
    with open(seen["logs"]["270282"]) as log:
        back = [int(m.group(1)) for m in re.finditer(r"sending held for \d+ ms: (\d+) reminders handed back", log.read())]
    assert back and back[0] > 1 and all(n <= 1 for n in back[1:]), back[:20]
    # what was in flight at 10:00, and its probes (which retry those); without the change of sender
    # of what was handed back untried, thousands
    assert f["sent_270282"] > 10_000 and 0 < f["from_down_after"] < 1000 and f["slipped"] > 1000, f


def test_an_overloaded_sunday_the_day_clocks_change(ctx):
    # 2027-03-14: clocks go forward at 02:00; Québec is closed on Sundays, Ontario and BC open 13:00 to
    # 17:00 local. At 1 segment/s far more is due than can go: what slips must be exactly what an
    # offline earliest-deadline computation leaves.
    sunday = check(run_day(ctx, dt.date(2027, 3, 14), 1, seed=3))
    assert sunday["slipped"] > 10_000 and "QC" not in sunday["sent_by_region"], sunday
    # The Monday after: 30k new rows besides Sunday's. The rows left over (Ontario and BC rows that
    # Sunday's windows could not take) go first, whatever their region: once a left-over row's window
    # is open, no row of the current day goes before it. SLACK covers the claim ahead of the sending
    # (at most 10 s of the code's rate) and the poll that follows a window's opening.
    seen = {}
    monday = check(run_day(ctx, dt.date(2027, 3, 15), 5, seed=4, rows=30_000, prefix="M", detail=seen))
    sent_at = {ref: t for t, ref in seen["sends"]}
    left = [r for r in seen["offline"] if r["left_over"]]
    assert len(left) > 10_000 and all(r["key"] in sent_at for r in left), (len(left), monday)
    today = sorted(t for t, ref in seen["sends"] if ref.startswith("M"))
    late = 0
    for r in left:
        late += max(0, bisect.bisect_left(today, sent_at[r["key"]]) - bisect.bisect_right(today, r["opens"] + SLACK))
    assert late == 0, (late, monday)
    # and all that was Sunday's (Québec's too, closed on Sundays) went before Monday's own rows closed
    assert monday["sent"] == monday["due"] and monday["slipped"] == 0, monday


if __name__ == "__main__":
    harness.main(globals())
