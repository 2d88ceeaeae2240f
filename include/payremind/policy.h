/* Contact rules, pure: schedule, notice delay, holidays, windows, caps and gaps -> send or skip(reason). */
#ifndef PAYREMIND_POLICY_H
#define PAYREMIND_POLICY_H

#include <stdint.h>
#include "payremind/holidays.h"

#define POLICY_MAX_WINDOWS 8
#define POLICY_MAX_REGIONS 16
#define POLICY_MAX_EXTRA_HOLIDAYS 64
#define POLICY_MAX_OFFSETS 16
#define POLICY_MAX_HISTORY 32
#define POLICY_NO_DATE INT32_MIN

struct policy_window {
	unsigned days; /* bit d set when weekday d is allowed, 0 = Sunday */
	int start_min; /* minutes after local midnight, 0..1439 */
	int end_min;   /* exclusive, start_min < end_min <= 1440 ("24:00") */
};

struct policy_region {
	char code[8]; /* "QC", "ON", ... */
	struct policy_window windows[POLICY_MAX_WINDOWS];
	int nwindows;
	enum holiday_set holidays;
	int32_t extra_holidays[POLICY_MAX_EXTRA_HOLIDAYS]; /* day numbers (tz_days_from_civil) */
	int nextra;
	int notice_days;    /* contact allowed from notice_sent_on + notice_days */
	int max_per_7_days; /* 0 = no cap */
};

struct policy_rules {
	struct policy_region regions[POLICY_MAX_REGIONS];
	int nregions;
	int offsets_days[POLICY_MAX_OFFSETS]; /* reminder k once local date >= due_date + offsets_days[k] */
	int noffsets;
	int min_gap_hours;  /* no two reminders to one number closer than this */
	int window_guard_s; /* a window with less than this left counts as closed (SPEC §11) */
};

/* One open due row, about to get reminder number `step` (0 <= step < noffsets). */
struct policy_row {
	const char *region;
	const char *time_zone;
	int32_t due_date; /* day number */
	int32_t
	    notice_sent_on; /* day number, or POLICY_NO_DATE (no notice sent: nothing goes where a delay applies) */
	int step;
	int settled, held, opted_out;
	int paid; /* the portal reported a payment (SPEC §10): no further reminder */
};

/* Reminders already sent to the row's number (any due row), newest last; only the last 7 days matter. */
struct policy_history {
	int64_t contacts[POLICY_MAX_HISTORY]; /* Unix seconds */
	int ncontacts;
};

enum policy_reason {
	POLICY_SEND,
	POLICY_SETTLED,
	POLICY_PAID,
	POLICY_HELD,
	POLICY_OPTED_OUT,
	POLICY_UNKNOWN_REGION,
	POLICY_SCHEDULE,
	POLICY_NOTICE,
	POLICY_HOLIDAY,
	POLICY_WINDOW,
	POLICY_CAP,
	POLICY_GAP,
	POLICY_PAUSED, /* never decided by the rules: an operator paused sending (payremind.control) */
	POLICY_REASONS
};

struct policy_decision {
	enum policy_reason reason; /* the first rule that blocks, in the order above */
	int64_t next_at;           /* for skips that time cures (schedule .. gap): the first
	                                                 instant >= now at which every rule allows sending;
	                                                 0 for final skips or when none is found in 400 days */
};

/* Fill rules with SPEC §3's built-in defaults: QC, ON and BC, offsets [1, 7, 14], min gap 24 h. */
void policy_defaults(struct policy_rules *rules);
/* The region with that code, or NULL. */
const struct policy_region *policy_region_find(const struct policy_rules *rules, const char *code);
/* Decide for one row at instant now (Unix seconds). 0, or -1 when the row's time zone is unknown. */
int policy_decide(const struct policy_rules *rules, const struct policy_row *row,
    const struct policy_history *hist, int64_t now, struct policy_decision *out)
    __attribute__((warn_unused_result));
/* The end of the region's contact window that contains instant now in zone (epoch s; the latest end of
 * the windows containing it): 0, or -1 when now is in none, or the region or zone is unknown. */
int policy_window_end(const struct policy_rules *rules, const char *region, const char *zone, int64_t now,
    int64_t *end) __attribute__((warn_unused_result));
/* Whether the region's contact window is open at now in zone, as the rules see it (not a holiday, at
 * least window_guard_s left): 1 with *closes = the window's end, 0 when closed, -1 when the region or
 * zone is unknown. *day_start: local midnight starting now's day in zone (when not -1). */
int policy_open(const struct policy_rules *rules, const char *region, const char *zone, int64_t now,
    int64_t *closes, int64_t *day_start) __attribute__((warn_unused_result));
/* The first instant at or after now at which the group's window is open, as the rules see it
 * (holidays, the guard); 0, or -1 when the region or zone is unknown (*at 0: none within 400 days). */
int policy_next_open(const struct policy_rules *rules, const char *region, const char *zone, int64_t now,
    int64_t *at) __attribute__((warn_unused_result));
/* The instant reminder `step` of a row becomes due: local midnight of due_date + offsets_days[step] in
 * zone. 0 with *at = 0 when there is no such step (the row is done), -1 for an unknown zone. */
int policy_step_at(const struct policy_rules *rules, int32_t due_date, const char *zone, int step,
    int64_t *at) __attribute__((warn_unused_result));
/* "send", or the SPEC §7 reason: settled, paid, held, opted_out, unknown_region, schedule, notice,
 * holiday, window, cap, gap. */
const char *policy_reason_to_text(enum policy_reason reason);

#endif
