/* Unit tests of policy.c: the built-in rules, each contact rule and its precedence, next_at across DST, and a
 * seeded property test against an independent reading of SPEC §3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "payremind/holidays.h"
#include "payremind/policy.h"
#include "payremind/tz.h"

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))
#define MTL "America/Montreal"
#define TOR "America/Toronto"
#define VAN "America/Vancouver"
#define HOUR 3600
#define DAY 86400
#define ALL_DAYS 0x7fu

/* The built-in regions plus test regions: XH (QC with 2027-03-17 as an extra holiday), NIGHT (every day
 * 02:30-04:00, inside the DST gap), MUTE (no window at all), LATE (every day 22:00-24:00), SPLIT (every day
 * 09:00-12:00 and 14:00-17:00). */
static struct policy_rules rules;
/* policy_defaults() alone, for the property tests. */
static struct policy_rules builtin;

static void
add_region(const char *code, unsigned days, int start, int end)
{
	struct policy_region *r = &rules.regions[rules.nregions++];

	memset(r, 0, sizeof(*r));
	snprintf(r->code, sizeof(r->code), "%s", code);
	if (days != 0) {
		r->windows[0] = (struct policy_window){ days, start, end };
		r->nwindows = 1;
	}
	r->holidays = HOLIDAYS_NONE;
}

static int
setup_rules(void **state)
{
	struct policy_region *xh;

	(void)state;
	policy_defaults(&builtin);
	policy_defaults(&rules);
	xh = &rules.regions[rules.nregions++];
	*xh = *policy_region_find(&rules, "QC");
	snprintf(xh->code, sizeof(xh->code), "XH");
	xh->extra_holidays[xh->nextra++] = tz_days_from_civil(2027, 3, 17);
	add_region("NIGHT", ALL_DAYS, 150, 240);
	add_region("MUTE", 0, 0, 0);
	add_region("LATE", ALL_DAYS, 1320, 1440);
	add_region("SPLIT", ALL_DAYS, 14 * 60, 17 * 60);
	rules.regions[rules.nregions - 1].windows[1] = (struct policy_window){ ALL_DAYS, 9 * 60, 12 * 60 };
	rules.regions[rules.nregions - 1].nwindows = 2;
	return 0;
}

static void
defaults_are_spec_section_3(void **state)
{
	static const struct {
		const char *code;
		enum holiday_set holidays;
		int notice, cap, nwindows;
		struct policy_window w[2];
	} want[] = {
		{ "QC", HOLIDAYS_QC, 5, 0, 1, { { 0x7e, 480, 1200 } } },
		{ "ON", HOLIDAYS_ON, 6, 3, 2, { { 0x7e, 420, 1260 }, { 0x01, 780, 1020 } } },
		{ "BC", HOLIDAYS_BC, 0, 0, 2, { { 0x7e, 420, 1260 }, { 0x01, 780, 1020 } } },
	};
	struct policy_rules d;
	const struct policy_region *r;
	size_t i;
	int k;

	(void)state;
	memset(&d, 0xa5, sizeof(d));
	policy_defaults(&d);
	assert_int_equal(d.nregions, 3);
	assert_int_equal(d.noffsets, 3);
	assert_int_equal(d.offsets_days[0], 1);
	assert_int_equal(d.offsets_days[1], 7);
	assert_int_equal(d.offsets_days[2], 14);
	assert_int_equal(d.min_gap_hours, 24);
	assert_int_equal(d.window_guard_s, 60);
	for (i = 0; i < NCASES(want); i++) {
		r = policy_region_find(&d, want[i].code);
		assert_non_null(r);
		assert_string_equal(r->code, want[i].code);
		assert_int_equal(r->holidays, want[i].holidays);
		assert_int_equal(r->notice_days, want[i].notice);
		assert_int_equal(r->max_per_7_days, want[i].cap);
		assert_int_equal(r->nextra, 0);
		assert_int_equal(r->nwindows, want[i].nwindows);
		for (k = 0; k < r->nwindows; k++) {
			assert_int_equal(r->windows[k].days, want[i].w[k].days);
			assert_int_equal(r->windows[k].start_min, want[i].w[k].start_min);
			assert_int_equal(r->windows[k].end_min, want[i].w[k].end_min);
		}
	}
	assert_null(policy_region_find(&d, "AB"));
	assert_null(policy_region_find(&d, "qc"));
	assert_null(policy_region_find(&d, NULL));
}

static void
reason_texts_are_the_spec_names(void **state)
{
	static const struct {
		enum policy_reason reason;
		const char *text;
	} want[] = {
		{ POLICY_SEND, "send" },
		{ POLICY_SETTLED, "settled" },
		{ POLICY_PAID, "paid" },
		{ POLICY_HELD, "held" },
		{ POLICY_OPTED_OUT, "opted_out" },
		{ POLICY_UNKNOWN_REGION, "unknown_region" },
		{ POLICY_SCHEDULE, "schedule" },
		{ POLICY_NOTICE, "notice" },
		{ POLICY_HOLIDAY, "holiday" },
		{ POLICY_WINDOW, "window" },
		{ POLICY_CAP, "cap" },
		{ POLICY_GAP, "gap" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(want); i++)
		assert_string_equal(policy_reason_to_text(want[i].reason), want[i].text);
}

struct at {
	int y, mo, d, h, mi;
};

/* One decision. Instants are local times in `zone` (also the row's zone). Unset fields mean: due 2026-01-01,
 * step 0, a notice sent 2025-12-01 (no_notice: none was sent), no contacts, nothing final, next_at 0.
 * Contacts are given as seconds before now. */
struct decide_case {
	const char *what;
	const char *region;
	const char *zone;
	struct at now;
	struct at due;
	int step;
	struct at notice;
	int no_notice;
	int64_t ago[4];
	int nago;
	int settled, held, opted_out, paid;
	enum policy_reason reason;
	struct at next;
};

static const struct decide_case decide_cases[] = {
	/* windows (2027-03-17 is a Wednesday, 03-21 a Sunday) */
	{ "QC Sunday", "QC", MTL, { 2027, 3, 21, 10, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 22, 8, 0 } },
	{ "Montreal 19:59", "QC", MTL, { 2027, 3, 17, 19, 59 }, .reason = POLICY_SEND },
	{ "Montreal 20:00", "QC", MTL, { 2027, 3, 17, 20, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 18, 8, 0 } },
	{ "Montreal 07:59", "QC", MTL, { 2027, 3, 17, 7, 59 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 17, 8, 0 } },
	{ "Montreal 08:00", "QC", MTL, { 2027, 3, 17, 8, 0 }, .reason = POLICY_SEND },
	{ "QC Saturday 20:30", "QC", MTL, { 2027, 3, 20, 20, 30 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 22, 8, 0 } },
	{ "Toronto 07:00", "ON", TOR, { 2027, 3, 17, 7, 0 }, .reason = POLICY_SEND },
	{ "Toronto 06:59", "ON", TOR, { 2027, 3, 17, 6, 59 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 17, 7, 0 } },
	{ "Toronto 20:59", "ON", TOR, { 2027, 3, 17, 20, 59 }, .reason = POLICY_SEND },
	{ "Toronto 21:00", "ON", TOR, { 2027, 3, 17, 21, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 18, 7, 0 } },
	{ "Toronto Sunday 13:00", "ON", TOR, { 2027, 3, 21, 13, 0 }, .reason = POLICY_SEND },
	{ "Toronto Sunday 16:59", "ON", TOR, { 2027, 3, 21, 16, 59 }, .reason = POLICY_SEND },
	{ "Toronto Sunday 12:59", "ON", TOR, { 2027, 3, 21, 12, 59 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 21, 13, 0 } },
	{ "Toronto Sunday 17:00", "ON", TOR, { 2027, 3, 21, 17, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 22, 7, 0 } },
	{ "Vancouver Sunday 13:00 (BC)", "BC", VAN, { 2027, 3, 21, 13, 0 }, .reason = POLICY_SEND },
	{ "no window at all", "MUTE", TOR, { 2027, 3, 17, 10, 0 }, .reason = POLICY_WINDOW },
	{ "window to 24:00: 23:59", "LATE", TOR, { 2027, 3, 17, 23, 59 }, .reason = POLICY_SEND },
	{ "window to 24:00: midnight", "LATE", TOR, { 2027, 3, 18, 0, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 18, 22, 0 } },
	{ "two windows: before both", "SPLIT", TOR, { 2027, 3, 17, 8, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 17, 9, 0 } },
	{ "two windows: between them", "SPLIT", TOR, { 2027, 3, 17, 12, 30 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 17, 14, 0 } },
	{ "two windows: after both", "SPLIT", TOR, { 2027, 3, 17, 17, 0 }, .reason = POLICY_WINDOW,
	    .next = { 2027, 3, 18, 9, 0 } },
	/* holidays */
	{ "Good Friday 2027 in QC", "QC", MTL, { 2027, 3, 26, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 27, 8, 0 } },
	{ "Good Friday 2027 in ON", "ON", TOR, { 2027, 3, 26, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 27, 7, 0 } },
	{ "Good Friday 2027 in BC", "BC", VAN, { 2027, 3, 26, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 27, 7, 0 } },
	{ "Easter Monday in QC", "QC", MTL, { 2027, 3, 29, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 30, 8, 0 } },
	{ "Easter Monday in ON", "ON", TOR, { 2027, 3, 29, 10, 0 }, .reason = POLICY_SEND },
	{ "Patriots' Day 2027", "QC", MTL, { 2027, 5, 24, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 5, 25, 8, 0 } },
	{ "Victoria Day 2027", "ON", TOR, { 2027, 5, 24, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 5, 25, 7, 0 } },
	{ "Victoria Day 2026", "ON", TOR, { 2026, 5, 18, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2026, 5, 19, 7, 0 } },
	{ "QC Saturday 20:30 before a holiday Monday", "QC", MTL, { 2027, 5, 22, 20, 30 },
	    .reason = POLICY_WINDOW, .next = { 2027, 5, 25, 8, 0 } },
	{ "June 24 in QC", "QC", MTL, { 2027, 6, 24, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 6, 25, 8, 0 } },
	{ "June 24 in ON", "ON", TOR, { 2027, 6, 24, 10, 0 }, .reason = POLICY_SEND },
	{ "July 2 2029 in QC", "QC", MTL, { 2029, 7, 2, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2029, 7, 3, 8, 0 } },
	{ "Good Friday 22:00 is a holiday first", "QC", MTL, { 2027, 3, 26, 22, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 27, 8, 0 } },
	{ "extra holiday of the region", "XH", MTL, { 2027, 3, 17, 10, 0 }, .reason = POLICY_HOLIDAY,
	    .next = { 2027, 3, 18, 8, 0 } },
	{ "extra holiday belongs to its region only", "QC", MTL, { 2027, 3, 17, 10, 0 },
	    .reason = POLICY_SEND },
	/* Ontario's cap: 3 contacts per 7 days */
	{ "ON third contact in 7 days", "ON", TOR, { 2027, 3, 17, 10, 0 }, .ago = { 4 * DAY, 2 * DAY },
	    .nago = 2, .reason = POLICY_SEND },
	{ "ON fourth contact in 7 days", "ON", TOR, { 2027, 3, 17, 10, 0 },
	    .ago = { 6 * DAY, 4 * DAY, 2 * DAY }, .nago = 3, .reason = POLICY_CAP,
	    .next = { 2027, 3, 18, 10, 0 } },
	{ "ON contact exactly 7 days ago no longer counts", "ON", TOR, { 2027, 3, 17, 10, 0 },
	    .ago = { 7 * DAY, 4 * DAY, 2 * DAY }, .nago = 3, .reason = POLICY_SEND },
	{ "ON cap ends at night: next window", "ON", TOR, { 2027, 3, 17, 10, 0 },
	    .ago = { 6 * DAY + 12 * HOUR, 4 * DAY, 2 * DAY }, .nago = 3, .reason = POLICY_CAP,
	    .next = { 2027, 3, 18, 7, 0 } },
	{ "QC has no cap", "QC", MTL, { 2027, 3, 17, 10, 0 }, .ago = { 6 * DAY, 5 * DAY, 4 * DAY, 2 * DAY },
	    .nago = 4, .reason = POLICY_SEND },
	{ "cap comes before gap", "ON", TOR, { 2027, 3, 17, 10, 0 }, .ago = { 6 * DAY, 4 * DAY, HOUR },
	    .nago = 3, .reason = POLICY_CAP, .next = { 2027, 3, 18, 10, 0 } },
	/* gap of 24 h */
	{ "gap 23h59", "QC", MTL, { 2027, 3, 17, 10, 0 }, .ago = { 23 * HOUR + 59 * 60 }, .nago = 1,
	    .reason = POLICY_GAP, .next = { 2027, 3, 17, 10, 1 } },
	{ "gap 24h", "QC", MTL, { 2027, 3, 17, 10, 0 }, .ago = { 24 * HOUR }, .nago = 1,
	    .reason = POLICY_SEND },
	{ "gap ends on a Sunday: Monday 08:00", "QC", MTL, { 2027, 3, 20, 19, 0 }, .ago = { 2 * HOUR },
	    .nago = 1, .reason = POLICY_GAP, .next = { 2027, 3, 22, 8, 0 } },
	/* notice delay: QC 5 days, ON 6, BC none (notice sent Monday 2027-03-15) */
	{ "QC notice day 4", "QC", MTL, { 2027, 3, 19, 10, 0 }, .notice = { 2027, 3, 15, 0, 0 },
	    .reason = POLICY_NOTICE, .next = { 2027, 3, 20, 8, 0 } },
	{ "QC notice day 5", "QC", MTL, { 2027, 3, 20, 10, 0 }, .notice = { 2027, 3, 15, 0, 0 },
	    .reason = POLICY_SEND },
	{ "ON notice day 5", "ON", TOR, { 2027, 3, 20, 10, 0 }, .notice = { 2027, 3, 15, 0, 0 },
	    .reason = POLICY_NOTICE, .next = { 2027, 3, 21, 13, 0 } },
	{ "ON notice day 6", "ON", TOR, { 2027, 3, 21, 13, 0 }, .notice = { 2027, 3, 15, 0, 0 },
	    .reason = POLICY_SEND },
	{ "BC notice day 0", "BC", VAN, { 2027, 3, 15, 10, 0 }, .notice = { 2027, 3, 15, 0, 0 },
	    .reason = POLICY_SEND },
	{ "QC no notice sent: never", "QC", MTL, { 2027, 3, 17, 10, 0 }, .no_notice = 1,
	    .reason = POLICY_NOTICE },
	{ "ON no notice sent: never", "ON", TOR, { 2027, 3, 17, 10, 0 }, .no_notice = 1,
	    .reason = POLICY_NOTICE },
	{ "BC no notice sent: no delay applies", "BC", VAN, { 2027, 3, 17, 10, 0 }, .no_notice = 1,
	    .reason = POLICY_SEND },
	{ "no notice: settled still reads settled", "QC", MTL, { 2027, 3, 17, 10, 0 }, .no_notice = 1,
	    .settled = 1, .reason = POLICY_SETTLED },
	{ "notice comes before holiday", "QC", MTL, { 2027, 3, 26, 10, 0 }, .notice = { 2027, 3, 25, 0, 0 },
	    .reason = POLICY_NOTICE, .next = { 2027, 3, 30, 8, 0 } },
	/* schedule: offsets 1, 7, 14 from due date 2027-03-16 */
	{ "step 0 on the due date", "QC", MTL, { 2027, 3, 16, 10, 0 }, .due = { 2027, 3, 16, 0, 0 },
	    .reason = POLICY_SCHEDULE, .next = { 2027, 3, 17, 8, 0 } },
	{ "step 0 the day after", "QC", MTL, { 2027, 3, 17, 10, 0 }, .due = { 2027, 3, 16, 0, 0 },
	    .reason = POLICY_SEND },
	{ "step 1 on due + 6", "QC", MTL, { 2027, 3, 22, 10, 0 }, .due = { 2027, 3, 16, 0, 0 }, .step = 1,
	    .reason = POLICY_SCHEDULE, .next = { 2027, 3, 23, 8, 0 } },
	{ "step 1 on due + 7", "QC", MTL, { 2027, 3, 23, 10, 0 }, .due = { 2027, 3, 16, 0, 0 }, .step = 1,
	    .reason = POLICY_SEND },
	{ "step 2 on due + 14", "QC", MTL, { 2027, 3, 30, 10, 0 }, .due = { 2027, 3, 16, 0, 0 }, .step = 2,
	    .reason = POLICY_SEND },
	{ "step beyond the schedule", "QC", MTL, { 2027, 3, 30, 10, 0 }, .due = { 2027, 3, 16, 0, 0 },
	    .step = 3, .reason = POLICY_SCHEDULE },
	{ "schedule uses the row's zone: still due date in Vancouver", "ON", VAN, { 2027, 3, 16, 23, 0 },
	    .due = { 2027, 3, 16, 0, 0 }, .reason = POLICY_SCHEDULE, .next = { 2027, 3, 17, 7, 0 } },
	{ "same instant in Toronto: next day, at night", "ON", TOR, { 2027, 3, 17, 2, 0 },
	    .due = { 2027, 3, 16, 0, 0 }, .reason = POLICY_WINDOW, .next = { 2027, 3, 17, 7, 0 } },
	{ "schedule then notice: next_at waits for both", "QC", MTL, { 2027, 3, 16, 10, 0 },
	    .due = { 2027, 3, 16, 0, 0 }, .notice = { 2027, 3, 15, 0, 0 }, .reason = POLICY_SCHEDULE,
	    .next = { 2027, 3, 20, 8, 0 } },
	{ "schedule on a Sunday holiday still says schedule", "QC", MTL, { 2029, 7, 1, 10, 0 },
	    .due = { 2029, 7, 1, 0, 0 }, .reason = POLICY_SCHEDULE, .next = { 2029, 7, 3, 8, 0 } },
	{ "schedule 351 days ahead", "QC", MTL, { 2027, 3, 17, 10, 0 }, .due = { 2028, 3, 1, 0, 0 },
	    .reason = POLICY_SCHEDULE, .next = { 2028, 3, 2, 8, 0 } },
	{ "schedule beyond 400 days: no next_at", "QC", MTL, { 2027, 3, 17, 10, 0 },
	    .due = { 2028, 6, 1, 0, 0 }, .reason = POLICY_SCHEDULE },
	/* final reasons and their precedence */
	{ "unknown region", "AB", MTL, { 2027, 3, 17, 10, 0 }, .reason = POLICY_UNKNOWN_REGION },
	{ "settled first", "QC", MTL, { 2027, 3, 17, 10, 0 }, .settled = 1, .held = 1, .opted_out = 1,
	    .reason = POLICY_SETTLED },
	{ "paid before held", "QC", MTL, { 2027, 3, 17, 10, 0 }, .paid = 1, .held = 1, .opted_out = 1,
	    .reason = POLICY_PAID },
	{ "settled before paid", "QC", MTL, { 2027, 3, 17, 10, 0 }, .settled = 1, .paid = 1,
	    .reason = POLICY_SETTLED },
	{ "paid in a window on a working day: still no reminder", "ON", TOR, { 2027, 3, 17, 10, 0 },
	    .paid = 1, .reason = POLICY_PAID },
	{ "held before opted out", "QC", MTL, { 2027, 3, 17, 10, 0 }, .held = 1, .opted_out = 1,
	    .reason = POLICY_HELD },
	{ "opted out", "QC", MTL, { 2027, 3, 17, 10, 0 }, .opted_out = 1, .reason = POLICY_OPTED_OUT },
	{ "opted out before unknown region", "AB", MTL, { 2027, 3, 17, 10, 0 }, .opted_out = 1,
	    .reason = POLICY_OPTED_OUT },
	{ "held on a Sunday holiday: final", "QC", MTL, { 2029, 7, 1, 10, 0 }, .held = 1,
	    .reason = POLICY_HELD },
	{ "unknown region before schedule", "AB", MTL, { 2027, 3, 16, 10, 0 }, .due = { 2027, 3, 16, 0, 0 },
	    .reason = POLICY_UNKNOWN_REGION },
};

static int64_t
local_instant(const char *zone, const struct at *a)
{
	struct tz_local lt = { a->y, a->mo, a->d, a->h, a->mi, 0, 0 };
	int64_t t;

	assert_int_equal(tz_from_local(zone, &lt, &t), 0);
	return t;
}

static int32_t
day_or(const struct at *a, int32_t fallback)
{
	return a->y == 0 ? fallback : tz_days_from_civil(a->y, a->mo, a->d);
}

static void
check_decide_case(const struct decide_case *c)
{
	struct policy_row row = { c->region, c->zone, day_or(&c->due, tz_days_from_civil(2026, 1, 1)),
		c->no_notice ? POLICY_NO_DATE : day_or(&c->notice, tz_days_from_civil(2025, 12, 1)), c->step,
		c->settled, c->held, c->opted_out, c->paid };
	int64_t now = local_instant(c->zone, &c->now);
	int64_t want = c->next.y == 0 ? 0 : local_instant(c->zone, &c->next);
	struct policy_history hist = { { 0 }, c->nago };
	struct policy_decision d;
	int i;

	for (i = 0; i < c->nago; i++)
		hist.contacts[i] = now - c->ago[i];
	assert_int_equal(policy_decide(&rules, &row, &hist, now, &d), 0);
	if (d.reason != c->reason || d.next_at != want)
		fail_msg("%s: got %s next_at %lld, want %s next_at %lld", c->what,
		    policy_reason_to_text(d.reason), (long long)d.next_at, policy_reason_to_text(c->reason),
		    (long long)want);
}

static void
decide_applies_each_rule_in_order_with_next_at(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(decide_cases); i++)
		check_decide_case(&decide_cases[i]);
}

/* Decisions around the 2027 DST nights, with instants in UTC computed independently. */
struct dst_case {
	const char *what;
	const char *region;
	const char *zone;
	int64_t now;
	enum policy_reason reason;
	int64_t next_at;
};

static const struct dst_case dst_cases[] = {
	{ "ON Sunday 01:30 EST, spring night: 13:00 EDT", "ON", TOR, 1805005800, POLICY_WINDOW, 1805043600 },
	{ "ON Sunday 16:59 EDT: 60 s left, the guard's limit", "ON", TOR, 1805057940, POLICY_SEND, 0 },
	{ "ON Sunday 16:59:01 EDT: 59 s left (guard 60 s), Monday 07:00 EDT", "ON", TOR, 1805057941,
	    POLICY_WINDOW, 1805108400 },
	{ "ON Sunday 17:00 EDT: Monday 07:00 EDT", "ON", TOR, 1805058000, POLICY_WINDOW, 1805108400 },
	{ "QC Saturday 20:30 EST: Monday 08:00 EDT", "QC", MTL, 1804987800, POLICY_WINDOW, 1805112000 },
	{ "BC Sunday 12:59 PDT: 13:00 PDT", "BC", VAN, 1805054340, POLICY_WINDOW, 1805054400 },
	{ "window opening in the gap opens at 03:00 EDT", "NIGHT", TOR, 1805004000, POLICY_WINDOW,
	    1805007600 },
	{ "03:59 EDT inside 02:30-04:00", "NIGHT", TOR, 1805011140, POLICY_SEND, 0 },
	{ "04:00 EDT: next day 02:30", "NIGHT", TOR, 1805011200, POLICY_WINDOW, 1805092200 },
	{ "ON Sunday 00:30 EDT, fall night: 13:00 EST", "ON", TOR, 1825561800, POLICY_WINDOW, 1825610400 },
	{ "ON Sunday 01:30 EST (second time)", "ON", TOR, 1825569000, POLICY_WINDOW, 1825610400 },
	{ "QC Saturday 20:30 EDT: Monday 08:00 EST", "QC", MTL, 1825547400, POLICY_WINDOW, 1825678800 },
};

static void
decide_uses_local_time_across_dst_changes(void **state)
{
	struct policy_row row = { NULL, NULL, 0, 0, 0, 0, 0, 0, 0 };
	struct policy_decision d;
	size_t i;

	(void)state;
	row.due_date = tz_days_from_civil(2026, 1, 1);
	row.notice_sent_on = tz_days_from_civil(2025, 12, 1);
	for (i = 0; i < NCASES(dst_cases); i++) {
		row.region = dst_cases[i].region;
		row.time_zone = dst_cases[i].zone;
		assert_int_equal(policy_decide(&rules, &row, NULL, dst_cases[i].now, &d), 0);
		if (d.reason != dst_cases[i].reason || d.next_at != dst_cases[i].next_at)
			fail_msg("%s: got %s next_at %lld", dst_cases[i].what,
			    policy_reason_to_text(d.reason), (long long)d.next_at);
	}
}

/* schedule.window_guard_s 0: the window's last second still sends. */
static void
no_guard_sends_to_the_last_second(void **state)
{
	struct policy_row row = { "ON", TOR, tz_days_from_civil(2026, 1, 1), tz_days_from_civil(2025, 12, 1),
		0, 0, 0, 0, 0 };
	struct policy_rules unguarded = rules;
	struct policy_decision d;

	(void)state;
	unguarded.window_guard_s = 0;
	assert_int_equal(policy_decide(&unguarded, &row, NULL, 1805057999, &d), 0);
	assert_int_equal(d.reason, POLICY_SEND);
	assert_int_equal(policy_decide(&rules, &row, NULL, 1805057999, &d), 0);
	assert_int_equal(d.reason, POLICY_WINDOW);
}

/* policy_open: what the claim's order sees of a (region, zone) group at one instant. */
static void
open_says_whether_and_until_when_a_group_may_be_contacted(void **state)
{
	static const struct {
		const char *what, *region, *zone;
		struct at now;
		int rc;
		struct at closes, day_start; /* local, in zone */
	} cases[] = {
		{ "QC Tuesday noon", "QC", MTL, { 2027, 3, 16, 12, 0 }, 1, { 2027, 3, 16, 20, 0 },
		    { 2027, 3, 16, 0, 0 } },
		{ "QC 19:59, exactly the guard left", "QC", MTL, { 2027, 3, 16, 19, 59 }, 1,
		    { 2027, 3, 16, 20, 0 }, { 2027, 3, 16, 0, 0 } },
		{ "QC Tuesday 07:59", "QC", MTL, { 2027, 3, 16, 7, 59 }, 0, { 0 }, { 2027, 3, 16, 0, 0 } },
		{ "QC Sunday", "QC", MTL, { 2027, 3, 14, 14, 0 }, 0, { 0 }, { 2027, 3, 14, 0, 0 } },
		{ "ON Sunday 14:00 EDT, the day clocks change", "ON", TOR, { 2027, 3, 14, 14, 0 }, 1,
		    { 2027, 3, 14, 17, 0 }, { 2027, 3, 14, 0, 0 } },
		{ "QC 24 June: Fete nationale", "QC", MTL, { 2027, 6, 24, 12, 0 }, 0, { 0 },
		    { 2027, 6, 24, 0, 0 } },
		{ "ON 24 June: open", "ON", TOR, { 2027, 6, 24, 12, 0 }, 1, { 2027, 6, 24, 21, 0 },
		    { 2027, 6, 24, 0, 0 } },
		{ "ON in Winnipeg", "ON", "America/Winnipeg", { 2027, 6, 24, 20, 30 }, 1,
		    { 2027, 6, 24, 21, 0 }, { 2027, 6, 24, 0, 0 } },
		{ "BC in Vancouver", "BC", VAN, { 2027, 6, 24, 8, 0 }, 1, { 2027, 6, 24, 21, 0 },
		    { 2027, 6, 24, 0, 0 } },
		{ "unknown region", "AB", TOR, { 2027, 6, 24, 12, 0 }, -1, { 0 }, { 0 } },
		{ "unknown zone", "QC", "America/Atlantis", { 2027, 6, 24, 12, 0 }, -1, { 0 }, { 0 } },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(cases); i++) {
		int64_t closes = -1, day_start = -1;
		/* an unknown zone has no local time: the instant is read in Montreal's */
		int64_t now = local_instant(cases[i].rc == -1 ? MTL : cases[i].zone, &cases[i].now);
		int rc = policy_open(&rules, cases[i].region, cases[i].zone, now, &closes, &day_start);

		if (rc != cases[i].rc)
			fail_msg("%s: got %d, want %d", cases[i].what, rc, cases[i].rc);
		if (rc == -1)
			continue;
		assert_int_equal(day_start, local_instant(cases[i].zone, &cases[i].day_start));
		if (rc == 1)
			assert_int_equal(closes, local_instant(cases[i].zone, &cases[i].closes));
	}
	/* 59 s left: inside the guard, closed */
	{
		int64_t closes, day_start;
		struct at a = { 2027, 3, 16, 19, 59 };

		assert_int_equal(
		    policy_open(&rules, "QC", MTL, local_instant(MTL, &a) + 1, &closes, &day_start), 0);
	}
}

/* policy_next_open: when a closed group's window opens (the daemon's next batch is there then). */
static void
next_open_is_now_when_open_else_the_next_opening(void **state)
{
	struct at tuesday_noon = { 2027, 3, 16, 12, 0 }, sunday_noon = { 2027, 3, 14, 12, 0 },
	          monday_eight = { 2027, 3, 15, 8, 0 }, sunday_one = { 2027, 3, 14, 13, 0 };
	int64_t at;

	(void)state;
	assert_int_equal(policy_next_open(&rules, "QC", MTL, local_instant(MTL, &tuesday_noon), &at), 0);
	assert_int_equal(at, local_instant(MTL, &tuesday_noon));
	assert_int_equal(policy_next_open(&rules, "QC", MTL, local_instant(MTL, &sunday_noon), &at), 0);
	assert_int_equal(at, local_instant(MTL, &monday_eight));
	assert_int_equal(policy_next_open(&rules, "ON", TOR, local_instant(TOR, &sunday_noon), &at), 0);
	assert_int_equal(at, local_instant(TOR, &sunday_one));
	assert_int_equal(policy_next_open(&rules, "AB", TOR, local_instant(TOR, &sunday_noon), &at), -1);
}

static void
unknown_zone_fails_unless_the_row_is_final(void **state)
{
	static const struct {
		int settled;
		const char *region;
		int rc;
		enum policy_reason reason;
	} cases[] = {
		{ 0, "QC", -1, POLICY_SEND },
		{ 1, "QC", 0, POLICY_SETTLED },
		{ 0, "AB", 0, POLICY_UNKNOWN_REGION },
	};
	struct policy_row row = { NULL, "America/Atlantis", 0, POLICY_NO_DATE, 0, 0, 0, 0, 0 };
	struct policy_decision d;
	size_t i;

	(void)state;
	for (i = 0; i < NCASES(cases); i++) {
		row.region = cases[i].region;
		row.settled = cases[i].settled;
		assert_int_equal(policy_decide(&rules, &row, NULL, 1805005800, &d), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(d.reason, cases[i].reason);
			assert_int_equal(d.next_at, 0);
		}
	}
}

/* Property test. A seeded generator (splitmix64) keeps it deterministic. */
static uint64_t prop_seed = 0x5eed2027u;

static uint64_t
prop_next(void)
{
	uint64_t z = (prop_seed += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static int64_t
prop_range(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(prop_next() % (uint64_t)(hi - lo));
}

/* SPEC §3 read directly, independently of policy_defaults(): 1 when local time lt is inside the region's
 * window and not on its holiday. */
static int
spec_window_allows(const char *region, const struct tz_local *lt)
{
	int m = lt->hour * 60 + lt->minute;
	enum holiday_set set = strcmp(region, "QC") == 0 ? HOLIDAYS_QC
	    : strcmp(region, "ON") == 0                  ? HOLIDAYS_ON
	                                                 : HOLIDAYS_BC;

	if (holidays_is_holiday(set, lt->year, lt->month, lt->day))
		return 0;
	if (lt->wday == 0)
		return set != HOLIDAYS_QC && m >= 13 * 60 && m < 17 * 60;
	if (set == HOLIDAYS_QC)
		return m >= 8 * 60 && m < 20 * 60;
	return m >= 7 * 60 && m < 21 * 60;
}

/* Every rule of SPEC §3 for the built-in regions at instant t, from tz_to_local and the row directly, with
 * SPEC §11's guard: the window's last 60 s (the default window_guard_s) count as closed, that is t + 59 s
 * must still lie in the window. *in_window: t itself does. */
static int
spec_allows(const struct policy_row *row, const struct policy_history *h, int64_t t, int *in_window)
{
	static const int offsets[] = { 1, 7, 14 };
	int notice = strcmp(row->region, "QC") == 0 ? 5 : strcmp(row->region, "ON") == 0 ? 6 : 0;
	int cap = strcmp(row->region, "ON") == 0 ? 3 : 0;
	struct tz_local lt, guard;
	int32_t day;
	int i, recent = 0, gap_ok = 1;

	assert_int_equal(tz_to_local(row->time_zone, t, &lt), 0);
	assert_int_equal(tz_to_local(row->time_zone, t + 59, &guard), 0);
	day = tz_days_from_civil(lt.year, lt.month, lt.day);
	*in_window = spec_window_allows(row->region, &lt);
	for (i = 0; i < h->ncontacts; i++) {
		recent += h->contacts[i] > t - 7 * DAY;
		gap_ok &= h->contacts[i] <= t - 24 * HOUR;
	}
	return *in_window && spec_window_allows(row->region, &guard) &&
	    day >= row->due_date + offsets[row->step] &&
	    (notice == 0 || (row->notice_sent_on != POLICY_NO_DATE && day >= row->notice_sent_on + notice)) &&
	    (cap == 0 || recent < cap) && gap_ok;
}

struct prop_stats {
	int decisions;
	int never; /* skips with no next instant */
	int sends_outside_window;
	int by_reason[POLICY_GAP + 1];
};

static enum policy_reason
prop_decide(const struct policy_row *row, const struct policy_history *h, int64_t t)
{
	struct policy_decision out;

	assert_int_equal(policy_decide(&builtin, row, h, t, &out), 0);
	return out.reason;
}

/* One instant: decide must agree with SPEC §3; a skip's next_at must send, be later than t, and have no
 * sending instant before it (at next_at - 60 s, at next_at - 1 s, nor at a few random instants in between). */
static void
prop_check(const struct policy_row *row, const struct policy_history *h, int64_t t, struct prop_stats *st)
{
	struct policy_decision out;
	int in_window, allows, i;

	assert_int_equal(policy_decide(&builtin, row, h, t, &out), 0);
	allows = spec_allows(row, h, t, &in_window);
	st->decisions++;
	st->by_reason[out.reason]++;
	st->sends_outside_window += out.reason == POLICY_SEND && !in_window;
	if ((out.reason == POLICY_SEND) != allows)
		fail_msg("%s in %s at %lld: policy says %s, SPEC says %s", row->region, row->time_zone,
		    (long long)t, policy_reason_to_text(out.reason), allows ? "send" : "skip");
	if (out.reason == POLICY_SEND) {
		assert_int_equal(out.next_at, 0);
		return;
	}
	if (out.next_at == 0) { /* never: only while no notice was sent in a region with a delay */
		assert_true(out.reason == POLICY_NOTICE || out.reason == POLICY_SCHEDULE);
		assert_int_equal(row->notice_sent_on, POLICY_NO_DATE);
		assert_string_not_equal(row->region, "BC");
		st->never++;
		return;
	}
	assert_true(out.next_at > t);
	assert_int_equal(prop_decide(row, h, out.next_at), POLICY_SEND);
	assert_true(spec_allows(row, h, out.next_at, &in_window));
	if (out.next_at - 60 >= t)
		assert_int_not_equal(prop_decide(row, h, out.next_at - 60), POLICY_SEND);
	assert_int_not_equal(prop_decide(row, h, out.next_at - 1), POLICY_SEND);
	for (i = 0; i < 3; i++)
		assert_false(spec_allows(row, h, prop_range(t, out.next_at), &in_window));
}

/* A random row for instant t: due 0-20 days before t's local date, step 0-2, a notice half the time, up to 4
 * contacts in the 8 days before t. */
static void
prop_row(struct policy_row *row, struct policy_history *h, int64_t t)
{
	struct tz_local lt;
	int32_t today;
	int i;

	assert_int_equal(tz_to_local(row->time_zone, t, &lt), 0);
	today = tz_days_from_civil(lt.year, lt.month, lt.day);
	row->due_date = today - (int32_t)prop_range(0, 21);
	row->step = (int)prop_range(0, 3);
	row->notice_sent_on = prop_range(0, 2) ? today - (int32_t)prop_range(0, 9) : POLICY_NO_DATE;
	h->ncontacts = (int)prop_range(0, 5);
	for (i = 0; i < h->ncontacts; i++)
		h->contacts[i] = t - prop_range(HOUR, 8 * DAY);
}

static const char *const prop_zones[] = { "America/Toronto", "America/Montreal", "America/Vancouver",
	"America/Edmonton", "America/Halifax", "America/St_Johns", "America/Winnipeg", "America/Regina" };
static const char *const prop_regions[] = { "QC", "ON", "BC" };

/* The property held, and was exercised: enough sends, and (when every_reason) every time-curable reason. */
static void
prop_assert_stats(const struct prop_stats *st, int every_reason)
{
	int r;

	assert_int_equal(st->sends_outside_window, 0);
	assert_true(st->never > 0); /* rows without a written notice in QC and ON */
	assert_true(st->by_reason[POLICY_SEND] > st->decisions / 20);
	for (r = POLICY_SCHEDULE; every_reason && r <= POLICY_GAP; r++) {
		if (st->by_reason[r] == 0)
			fail_msg("no decision with reason %s: the property is not exercised",
			    policy_reason_to_text((enum policy_reason)r));
	}
}

/* Random instants through 2027 x every built-in region x random zones. */
static void
decide_agrees_with_spec_at_random_instants(void **state)
{
	struct prop_stats st = { 0 };
	struct policy_history h;
	struct policy_row row;
	int64_t t;
	int n;

	(void)state;
	memset(&row, 0, sizeof(row));
	for (n = 0; n < 10000; n++) {
		row.region = prop_regions[n % NCASES(prop_regions)];
		row.time_zone = prop_zones[prop_range(0, NCASES(prop_zones))];
		t = prop_range(1798761600, 1830297600); /* 2027 */
		prop_row(&row, &h, t);
		prop_check(&row, &h, t, &st);
	}
	prop_assert_stats(&st, 1);
}

/* Every 13 minutes through both 2027 DST weekends, in every zone, for every region. */
static void
decide_agrees_with_spec_across_dst_weekends(void **state)
{
	static const int64_t weekends[] = { 1804896000,
		1825459200 }; /* 2027-03-13 and 2027-11-06, 00:00 UTC */
	struct prop_stats st = { 0 };
	struct policy_history h;
	struct policy_row row;
	size_t w, z, r;
	int64_t t;

	(void)state;
	memset(&row, 0, sizeof(row));
	for (z = 0; z < NCASES(prop_zones); z++)
		for (r = 0; r < NCASES(prop_regions); r++)
			for (w = 0; w < NCASES(weekends); w++)
				for (t = weekends[w]; t < weekends[w] + 2 * DAY + 12 * HOUR; t += 13 * 60) {
					row.region = prop_regions[r];
					row.time_zone = prop_zones[z];
					prop_row(&row, &h, t);
					prop_check(&row, &h, t, &st);
				}
	prop_assert_stats(&st, 0);
}

/* When step k becomes due: local midnight of due_date + offsets_days[k], across a DST change too. */
static void
step_at_is_local_midnight_of_due_date_plus_offset(void **state)
{
	static const struct {
		const char *zone;
		int y, m, d; /* due date */
		int step;
		int rc;
		const char *want; /* local midnight "YYYY-MM-DD" in zone, NULL for no such step */
	} cases[] = {
		{ "America/Toronto", 2026, 11, 20, 0, 0, "2026-11-21" },
		{ "America/Toronto", 2026, 11, 20, 1, 0, "2026-11-27" },
		{ "America/Toronto", 2026, 11, 20, 2, 0, "2026-12-04" },
		{ "America/Toronto", 2026, 11, 20, 3, 0, NULL },
		{ "America/Vancouver", 2027, 3, 7, 1, 0, "2027-03-14" }, /* the night DST starts */
		{ "America/Toronto", 2027, 10, 31, 1, 0, "2027-11-07" }, /* the night DST ends */
		{ "Mars/Olympus", 2026, 11, 20, 0, -1, NULL },
	};
	struct policy_rules r;
	size_t i;

	(void)state;
	policy_defaults(&r);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t at = -1;
		int rc = policy_step_at(&r, tz_days_from_civil(cases[i].y, cases[i].m, cases[i].d),
		    cases[i].zone, cases[i].step, &at);

		assert_int_equal(rc, cases[i].rc);
		if (cases[i].want == NULL) {
			if (rc == 0)
				assert_int_equal(at, 0);
			continue;
		}
		struct tz_local lt;
		char got[16];

		assert_int_equal(tz_to_local(cases[i].zone, at, &lt), 0);
		snprintf(got, sizeof(got), "%04d-%02d-%02d", lt.year, lt.month, lt.day);
		assert_string_equal(got, cases[i].want);
		assert_int_equal(lt.hour * 3600 + lt.minute * 60 + lt.second, 0);
	}
}

/* The end of the window that contains an instant, in the recipient's zone (the validity a request carries,
 * SPEC §11). */
static void
window_end_is_the_close_of_the_current_window(void **state)
{
	struct policy_rules r;
	int64_t end = 0;

	(void)state;
	policy_defaults(&r);
	/* Monday 2026-11-30 10:00 in Toronto (EST): QC closes at 20:00 EST = 01:00Z. */
	assert_int_equal(policy_window_end(&r, "QC", "America/Toronto", 1796050800, &end), 0);
	assert_int_equal(end, 1796086800);
	/* The same instant in Vancouver is 07:00 PST, BC's opening: it closes at 21:00 PST = 05:00Z. */
	assert_int_equal(policy_window_end(&r, "BC", "America/Vancouver", 1796050800, &end), 0);
	assert_int_equal(end, 1796050800 + 14 * 3600);
	/* Sunday 2026-11-29 12:00 EST: QC has no window; ON's Sunday window 13:00-17:00 is not open yet. */
	assert_int_equal(policy_window_end(&r, "QC", "America/Toronto", 1795971600, &end), -1);
	assert_int_equal(policy_window_end(&r, "ON", "America/Toronto", 1795971600, &end), -1);
	/* Sunday 14:00 EST: ON closes at 17:00 EST = 22:00Z. */
	assert_int_equal(policy_window_end(&r, "ON", "America/Toronto", 1795978800, &end), 0);
	assert_int_equal(end, 1795989600);
	/* A window to midnight that the next day continues from 00:00 is one window: Monday and Tuesday
	 * 00:00-24:00, at Monday 2026-11-30 23:00 EST, closes Wednesday 00:00 EST = 05:00Z. */
	r.nregions = 0;
	r.regions[0] = (struct policy_region){ .code = "MT", .nwindows = 1, .holidays = HOLIDAYS_NONE };
	r.regions[0].windows[0] = (struct policy_window){ (1u << 1) | (1u << 2), 0, 1440 };
	r.nregions = 1;
	assert_int_equal(policy_window_end(&r, "MT", "America/Toronto", 1796097600, &end), 0);
	assert_int_equal(end, 1796187600);
	/* Windows that touch are one: 08:00-12:00 and 12:00-20:00 every day, at Monday 10:00 EST: 20:00 EST. */
	r.regions[0].windows[0] = (struct policy_window){ 0x7f, 8 * 60, 12 * 60 };
	r.regions[0].windows[1] = (struct policy_window){ 0x7f, 12 * 60, 20 * 60 };
	r.regions[0].nwindows = 2;
	assert_int_equal(policy_window_end(&r, "MT", "America/Toronto", 1796050800, &end), 0);
	assert_int_equal(end, 1796086800);
	policy_defaults(&r);
	/* Unknown region or zone: none. */
	assert_int_equal(policy_window_end(&r, "XX", "America/Toronto", 1796050800, &end), -1);
	assert_int_equal(policy_window_end(&r, "QC", "Mars/Olympus", 1796050800, &end), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults_are_spec_section_3),
		cmocka_unit_test(reason_texts_are_the_spec_names),
		cmocka_unit_test(decide_applies_each_rule_in_order_with_next_at),
		cmocka_unit_test(decide_uses_local_time_across_dst_changes),
		cmocka_unit_test(no_guard_sends_to_the_last_second),
		cmocka_unit_test(open_says_whether_and_until_when_a_group_may_be_contacted),
		cmocka_unit_test(next_open_is_now_when_open_else_the_next_opening),
		cmocka_unit_test(unknown_zone_fails_unless_the_row_is_final),
		cmocka_unit_test(step_at_is_local_midnight_of_due_date_plus_offset),
		cmocka_unit_test(decide_agrees_with_spec_at_random_instants),
		cmocka_unit_test(decide_agrees_with_spec_across_dst_weekends),
		cmocka_unit_test(window_end_is_the_close_of_the_current_window),
	};

	return cmocka_run_group_tests(tests, setup_rules, NULL);
}
