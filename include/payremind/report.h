/* The funnel from SMS to payment, pure: per-group counts -> a text table, JSON, or one self-contained
 * HTML page with the funnel and a per-day chart as inline SVG (no script, no external resource). */
#ifndef PAYREMIND_REPORT_H
#define PAYREMIND_REPORT_H

#include <jansson.h>

#include "payremind/html.h"

/* The stages, in funnel order; each reminder counts at most once per stage. */
enum report_stage {
	REPORT_SENT,
	REPORT_DELIVERED,
	REPORT_FAILED,
	REPORT_UNKNOWN,
	REPORT_OPENED,
	REPORT_CHECKOUT,
	REPORT_PAID,
	REPORT_OPTED_OUT,
	REPORT_NSTAGES
};

/* One group: its key ("0", "fr", "QC", "2026-12-01") and its counts. */
struct report_group {
	char key[32];
	long n[REPORT_NSTAGES];
};

/* "sent", "delivered", … as in SPEC §7. */
const char *report_stage_name(enum report_stage s);
/* The JSON array of SPEC §7: one object per group with the key under `by` and every stage. A step
 * key is a number, the others strings. */
json_t *report_json(const char *by, const struct report_group *g, int n);
/* A fixed-width table, a totals line last. */
void report_text(FILE *fp, const char *by, const struct report_group *g, int n);
/* The HTML page: the totals as a funnel, the groups as a table, and a chart of sent and paid per day
 * (days[0..ndays), oldest first). period is shown as text. */
void report_html(struct html *h, const char *by, const char *period, const struct report_group *g, int n,
    const struct report_group *days, int ndays);

#endif
