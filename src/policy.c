/* Contact rules, pure: decides send or skip(reason) for one row at an injected instant, and when it may send. */
#include <string.h>

#include "payremind/policy.h"
#include "payremind/tz.h"

#define POLICY_DAY_S 86400
#define POLICY_WEEK_S (7 * (int64_t)POLICY_DAY_S)
#define POLICY_HORIZON_S (400 * (int64_t)POLICY_DAY_S)
#define POLICY_NEVER INT32_MAX /* a first allowed day that never comes */
#define POLICY_SUN 0x01u
#define POLICY_MON_SAT 0x7eu

/* SPEC §3: the rules used when the configuration has no `regions` group. */
static const struct policy_region policy_builtin[] = {
	{ .code = "QC",
	    .windows = { { POLICY_MON_SAT, 8 * 60, 20 * 60 } },
	    .nwindows = 1,
	    .holidays = HOLIDAYS_QC,
	    .notice_days = 5,
	    .max_per_7_days = 0 },
	{ .code = "ON",
	    .windows = { { POLICY_MON_SAT, 7 * 60, 21 * 60 }, { POLICY_SUN, 13 * 60, 17 * 60 } },
	    .nwindows = 2,
	    .holidays = HOLIDAYS_ON,
	    .notice_days = 6,
	    .max_per_7_days = 3 },
	{ .code = "BC",
	    .windows = { { POLICY_MON_SAT, 7 * 60, 21 * 60 }, { POLICY_SUN, 13 * 60, 17 * 60 } },
	    .nwindows = 2,
	    .holidays = HOLIDAYS_BC,
	    .notice_days = 0,
	    .max_per_7_days = 0 },
};

static const int policy_builtin_offsets[] = { 1, 7, 14 };

static const char *const policy_reason_names[] = {
	[POLICY_SEND] = "send",
	[POLICY_SETTLED] = "settled",
	[POLICY_PAID] = "paid",
	[POLICY_HELD] = "held",
	[POLICY_OPTED_OUT] = "opted_out",
	[POLICY_UNKNOWN_REGION] = "unknown_region",
	[POLICY_SCHEDULE] = "schedule",
	[POLICY_NOTICE] = "notice",
	[POLICY_HOLIDAY] = "holiday",
	[POLICY_WINDOW] = "window",
	[POLICY_CAP] = "cap",
	[POLICY_GAP] = "gap",
	[POLICY_PAUSED] = "paused",
};

/* One decision's inputs. */
struct policy_ctx {
	const struct policy_rules *rules;
	const struct policy_region *region;
	const struct policy_row *row;
	const struct policy_history *hist;
};

/* The first rule that blocks at one instant, and the earliest instant at which that rule stops blocking
 * (0: never). */
struct policy_block {
	enum policy_reason reason;
	int64_t until;
};

void
policy_defaults(struct policy_rules *rules)
{
	memset(rules, 0, sizeof(*rules));
	memcpy(rules->regions, policy_builtin, sizeof(policy_builtin));
	rules->nregions = sizeof(policy_builtin) / sizeof(policy_builtin[0]);
	memcpy(rules->offsets_days, policy_builtin_offsets, sizeof(policy_builtin_offsets));
	rules->noffsets = sizeof(policy_builtin_offsets) / sizeof(policy_builtin_offsets[0]);
	rules->min_gap_hours = 24;
	rules->window_guard_s = 60;
}

const struct policy_region *
policy_region_find(const struct policy_rules *rules, const char *code)
{
	int i;

	for (i = 0; code != NULL && i < rules->nregions; i++) {
		if (strcmp(rules->regions[i].code, code) == 0)
			return &rules->regions[i];
	}
	return NULL;
}

const char *
policy_reason_to_text(enum policy_reason reason)
{
	if ((unsigned)reason >= sizeof(policy_reason_names) / sizeof(policy_reason_names[0]))
		return "unknown";
	return policy_reason_names[reason];
}

/* The skips no waiting cures, in precedence order; sets c->region when none applies. */
static enum policy_reason
policy_final_reason(struct policy_ctx *c)
{
	if (c->row->settled)
		return POLICY_SETTLED;
	if (c->row->paid)
		return POLICY_PAID;
	if (c->row->held)
		return POLICY_HELD;
	if (c->row->opted_out)
		return POLICY_OPTED_OUT;
	c->region = policy_region_find(c->rules, c->row->region);
	return c->region == NULL ? POLICY_UNKNOWN_REGION : POLICY_SEND;
}

/* The first local day on which reminder `step` may go; POLICY_NEVER for a step the schedule does not have. */
static int32_t
policy_schedule_day(const struct policy_ctx *c)
{
	int step = c->row->step;

	if (step < 0 || step >= c->rules->noffsets || step >= POLICY_MAX_OFFSETS)
		return POLICY_NEVER;
	return c->row->due_date + c->rules->offsets_days[step];
}

/* The first local day after the written notice's delay: INT32_MIN in a region without one, POLICY_NEVER
 * while no notice has been sent in a region with one (SPEC §2: NULL means no notice was sent). */
static int32_t
policy_notice_day(const struct policy_ctx *c)
{
	if (c->region->notice_days <= 0)
		return INT32_MIN;
	if (c->row->notice_sent_on == POLICY_NO_DATE)
		return POLICY_NEVER;
	return c->row->notice_sent_on + c->region->notice_days;
}

/* The instant of local time `minute` (after midnight) on local day `day` in the row's zone. */
static int
policy_local_instant(const struct policy_ctx *c, int32_t day, int minute, int64_t *out)
{
	struct tz_local lt = { 0 };

	tz_civil_from_days(day, &lt.year, &lt.month, &lt.day);
	lt.hour = minute / 60;
	lt.minute = minute % 60;
	return tz_from_local(c->row->time_zone, &lt, out);
}

/* Block with `reason` until local midnight starting `day` (never for POLICY_NEVER). */
static int
policy_block_until_day(
    const struct policy_ctx *c, enum policy_reason reason, int32_t day, struct policy_block *b)
{
	b->reason = reason;
	b->until = 0;
	if (day == POLICY_NEVER)
		return 0;
	return policy_local_instant(c, day, 0, &b->until);
}

static int
policy_is_holiday(const struct policy_region *r, int32_t day, const struct tz_local *lt)
{
	int i;

	for (i = 0; i < r->nextra && i < POLICY_MAX_EXTRA_HOLIDAYS; i++) {
		if (r->extra_holidays[i] == day)
			return 1;
	}
	return holidays_is_holiday(r->holidays, lt->year, lt->month, lt->day);
}

/* 1 when local time lt lies in one of the region's windows for its weekday (end exclusive). */
static int
policy_in_window(const struct policy_region *r, const struct tz_local *lt)
{
	int minute = lt->hour * 60 + lt->minute;
	int i;

	for (i = 0; i < r->nwindows && i < POLICY_MAX_WINDOWS; i++) {
		const struct policy_window *w = &r->windows[i];

		if ((w->days & (1u << lt->wday)) && w->start_min <= minute && minute < w->end_min)
			return 1;
	}
	return 0;
}

/* The earliest window opening after instant t, local day `day` (weekday wday) included, within a week; 0 when
 * the region has no window. Openings come from tz_from_local, so one inside a DST gap opens at the gap's end.
 * Days are scanned in order and the scan stops at the first day that has an opening after t. An opening in a
 * repeated (fall-back) hour counts at its first occurrence only: a window starting between 01:00 and 02:00 is
 * found a day late when t lies between the two occurrences. */
static int
policy_next_opening(const struct policy_ctx *c, int32_t day, int wday, int64_t t, int64_t *out)
{
	const struct policy_region *r = c->region;
	int64_t at;
	int k, i;

	*out = 0;
	for (k = 0; k <= 7 && *out == 0; k++) {
		for (i = 0; i < r->nwindows && i < POLICY_MAX_WINDOWS; i++) {
			if (!(r->windows[i].days & (1u << ((wday + k) % 7))))
				continue;
			if (policy_local_instant(c, day + k, r->windows[i].start_min, &at) == -1)
				return -1;
			if (at > t && (*out == 0 || at < *out))
				*out = at;
		}
	}
	return 0;
}

/* 1 when the region's cap is reached at t: contacts in (t - 7 days, t] (and any later ones, which can only be
 * clock skew) number max_per_7_days or more. *until: when the oldest of them leaves the 7 days. */
static int
policy_cap_blocks(const struct policy_ctx *c, int64_t t, int64_t *until)
{
	const struct policy_history *h = c->hist;
	int64_t oldest = INT64_MAX;
	int n = 0, i;

	if (c->region->max_per_7_days <= 0 || h == NULL)
		return 0;
	for (i = 0; i < h->ncontacts && i < POLICY_MAX_HISTORY; i++) {
		if (h->contacts[i] > t - POLICY_WEEK_S) {
			n++;
			if (h->contacts[i] < oldest)
				oldest = h->contacts[i];
		}
	}
	if (n < c->region->max_per_7_days)
		return 0;
	*until = oldest + POLICY_WEEK_S;
	return 1;
}

/* 1 when a contact lies less than min_gap_hours before t; *until: the latest contact + the gap. */
static int
policy_gap_blocks(const struct policy_ctx *c, int64_t t, int64_t *until)
{
	const struct policy_history *h = c->hist;
	int64_t gap = (int64_t)c->rules->min_gap_hours * 3600;
	int64_t latest = INT64_MIN;
	int i;

	if (gap <= 0 || h == NULL)
		return 0;
	for (i = 0; i < h->ncontacts && i < POLICY_MAX_HISTORY; i++) {
		if (h->contacts[i] > latest)
			latest = h->contacts[i];
	}
	if (latest == INT64_MIN || latest <= t - gap)
		return 0;
	*until = latest + gap;
	return 1;
}

/* The rules time cures, at instant t, in the order of enum policy_reason: the first that blocks, or
 * POLICY_SEND. Date rules use the local date in the row's zone; windows its local time and weekday. */
static int
policy_evaluate(const struct policy_ctx *c, int64_t t, struct policy_block *b)
{
	struct tz_local lt;
	int32_t day;

	if (tz_to_local(c->row->time_zone, t, &lt) == -1)
		return -1;
	day = tz_days_from_civil(lt.year, lt.month, lt.day);
	if (day < policy_schedule_day(c))
		return policy_block_until_day(c, POLICY_SCHEDULE, policy_schedule_day(c), b);
	if (day < policy_notice_day(c))
		return policy_block_until_day(c, POLICY_NOTICE, policy_notice_day(c), b);
	if (policy_is_holiday(c->region, day, &lt))
		return policy_block_until_day(c, POLICY_HOLIDAY, day + 1, b);
	b->reason = POLICY_WINDOW;
	if (!policy_in_window(c->region, &lt))
		return policy_next_opening(c, day, lt.wday, t, &b->until);
	/* the window's last window_guard_s seconds count as closed: it is over when the window ends */
	if (c->rules->window_guard_s > 0) {
		int64_t end;

		if (policy_window_end(c->rules, c->region->code, c->row->time_zone, t, &end) == -1)
			return -1;
		if (end - t < c->rules->window_guard_s) {
			b->until = end;
			return 0;
		}
	}
	b->reason = POLICY_CAP;
	if (policy_cap_blocks(c, t, &b->until))
		return 0;
	b->reason = POLICY_GAP;
	if (policy_gap_blocks(c, t, &b->until))
		return 0;
	b->reason = POLICY_SEND;
	b->until = 0;
	return 0;
}

/* The next candidate after t: `until`, or the next whole minute when a zone's repeated local hour put `until`
 * at or before t (local rules change only on whole minutes, so stepping by minutes skips no sending instant). */
static int64_t
policy_advance(int64_t t, int64_t until)
{
	int64_t r = t % 60;

	if (until > t)
		return until;
	return t - (r < 0 ? r + 60 : r) + 60;
}

/* The earliest instant >= now at which every rule allows sending, given that the rule blocking at now stops
 * at `until`: each step jumps to where the current blocker stops, which can only be earlier than or equal to
 * the answer, so the first instant that passes every rule is the earliest. 0 when none within 400 days. */
static int
policy_next_send(const struct policy_ctx *c, int64_t now, int64_t until, int64_t *next_at)
{
	struct policy_block b;
	int64_t t = now;

	*next_at = 0;
	while (until != 0) {
		t = policy_advance(t, until);
		if (t - now > POLICY_HORIZON_S)
			return 0;
		if (policy_evaluate(c, t, &b) == -1)
			return -1;
		if (b.reason == POLICY_SEND) {
			*next_at = t;
			return 0;
		}
		until = b.until;
	}
	return 0;
}

/* Final reasons are checked before the zone is needed, so a settled row with a zone the C library does not
 * know still reads "settled"; only a row that could be contacted needs its zone (-1 when unknown). */
int
policy_decide(const struct policy_rules *rules, const struct policy_row *row,
    const struct policy_history *hist, int64_t now, struct policy_decision *out)
{
	struct policy_ctx c = { rules, NULL, row, hist };
	struct policy_block b;

	out->next_at = 0;
	out->reason = policy_final_reason(&c);
	if (out->reason != POLICY_SEND)
		return 0;
	if (policy_evaluate(&c, now, &b) == -1)
		return -1;
	out->reason = b.reason;
	if (b.reason == POLICY_SEND)
		return 0;
	return policy_next_send(&c, now, b.until, &out->next_at);
}

/* The latest end of the region's windows on weekday wday that start at or before minute and end after
 * it, followed through windows that touch or overlap; -1 when none contains minute. */
static int
policy_window_close(const struct policy_region *r, int wday, int minute)
{
	int best = -1, grew = 1, i;

	while (grew) {
		grew = 0;
		for (i = 0; i < r->nwindows && i < POLICY_MAX_WINDOWS; i++) {
			const struct policy_window *w = &r->windows[i];

			if ((w->days & (1u << wday)) && w->start_min <= (best < 0 ? minute : best) &&
			    (best < 0 ? minute : best) < w->end_min && w->end_min > best) {
				best = w->end_min;
				grew = 1;
			}
		}
	}
	return best;
}

int
policy_window_end(
    const struct policy_rules *rules, const char *region, const char *zone, int64_t now, int64_t *end)
{
	const struct policy_region *r = policy_region_find(rules, region);
	struct tz_local lt, at = { 0 };
	int best, ext, n;
	int32_t day;

	if (r == NULL || tz_to_local(zone, now, &lt) == -1)
		return -1;
	if ((best = policy_window_close(r, lt.wday, lt.hour * 60 + lt.minute)) < 0)
		return -1;
	day = tz_days_from_civil(lt.year, lt.month, lt.day);
	/* A window to midnight that the next day's window continues from 00:00 (not a holiday) is one window:
	 * follow it, a week at most. */
	for (n = 0; best == 1440 && n < 7; n++) {
		struct tz_local next = { 0 };

		tz_civil_from_days(day + 1, &next.year, &next.month, &next.day);
		if (policy_is_holiday(r, day + 1, &next) ||
		    (ext = policy_window_close(r, (lt.wday + n + 1) % 7, 0)) < 0)
			break;
		day++;
		best = ext;
	}
	day += best / 1440;
	tz_civil_from_days(day, &at.year, &at.month, &at.day);
	at.hour = best % 1440 / 60;
	at.minute = best % 60;
	return tz_from_local(zone, &at, end);
}

int
policy_open(const struct policy_rules *rules, const char *region, const char *zone, int64_t now,
    int64_t *closes, int64_t *day_start)
{
	const struct policy_region *r = policy_region_find(rules, region);
	struct tz_local lt, midnight = { 0 };

	*closes = 0;
	if (r == NULL || tz_to_local(zone, now, &lt) == -1)
		return -1;
	midnight.year = lt.year;
	midnight.month = lt.month;
	midnight.day = lt.day;
	if (tz_from_local(zone, &midnight, day_start) == -1)
		return -1;
	if (policy_is_holiday(r, tz_days_from_civil(lt.year, lt.month, lt.day), &lt) ||
	    !policy_in_window(r, &lt) || policy_window_end(rules, region, zone, now, closes) == -1)
		return 0;
	return *closes - now >= rules->window_guard_s;
}

int
policy_next_open(
    const struct policy_rules *rules, const char *region, const char *zone, int64_t now, int64_t *at)
{
	/* a row nothing else holds back: due long ago, its notice long past, nobody contacted */
	struct policy_row row = { region, zone, -365 * 30, -365 * 30, 0, 0, 0, 0,
		0 }; /* due and told in 1940 */
	struct policy_decision dec;

	*at = 0;
	if (policy_decide(rules, &row, NULL, now, &dec) == -1 || dec.reason == POLICY_UNKNOWN_REGION)
		return -1;
	*at = dec.reason == POLICY_SEND ? now : dec.next_at;
	return 0;
}

int
policy_step_at(const struct policy_rules *rules, int32_t due_date, const char *zone, int step, int64_t *at)
{
	struct tz_local lt = { 0 };

	*at = 0;
	if (step < 0 || step >= rules->noffsets)
		return 0;
	tz_civil_from_days(due_date + rules->offsets_days[step], &lt.year, &lt.month, &lt.day);
	return tz_from_local(zone, &lt, at);
}
