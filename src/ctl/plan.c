/* payremindctl plan: the rest of the day at the configured rate (SPEC §11). Per (region, time zone): what
 * may go in its current or next contact window, its segments, when that window closes, and when the
 * first and the last of it would go, in the daemon's order, or how many slip to the next window. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/gsm.h"
#include "payremind/policy.h"
#include "payremind/store.h"
#include "payremind/template.h"
#include "payremind/token.h"
#include "payremind/tz.h"

#include "ctl.h"

/* A row that may go in its group's window. */
struct plan_row {
	int group;
	int left_over; /* its next look lies before its window's local day: it goes before that day's rows */
	int64_t first; /* the first instant the rules allow */
	double look;   /* its next look (-inf: nobody has looked at it yet, it goes first) */
	int32_t due_date;
	int64_t due_id;
	int segments;
};

struct plan_group {
	const char *region, *zone;
	int64_t opens, closes, day_start; /* the current window (opens = at) or the next one */
	int usable;                       /* a window was found */
	long reminders, segments, sent, slipped;
	int64_t first_send, last_send; /* 0 when none */
	struct plan_row **queue;       /* its rows in the daemon's order */
	int nqueue, head;
};

struct plan {
	struct plan_group *groups;
	int ngroups;
	struct plan_row *rows;
	int nrows;
};

static int
plan_group_of(struct plan *p, const char *region, const char *zone)
{
	int i;

	for (i = 0; i < p->ngroups; i++)
		if (strcmp(p->groups[i].region, region) == 0 && strcmp(p->groups[i].zone, zone) == 0)
			return i;
	if ((p->groups = realloc(p->groups, sizeof(*p->groups) * (size_t)(p->ngroups + 1))) == NULL)
		fatal("plan");
	memset(&p->groups[p->ngroups], 0, sizeof(p->groups[0]));
	p->groups[p->ngroups].region = region;
	p->groups[p->ngroups].zone = zone;
	return p->ngroups++;
}

/* Segments of the row's text as the daemon would render it (a token of the real length; a text that
 * cannot be rendered counts 1: the daemon records why it failed). */
static int
plan_segments(const struct conf *conf, const struct dry_row *r)
{
	char link[512], text[2048], err[256];
	struct template_vars vars = { link, r->amount_cents, r->currency, 0, 0, 0, r->account_ref };
	struct gsm_info info;
	int segments = 1;

	/* a token of the real length (its characters are all GSM-7, as a real one's) */
	snprintf(link, sizeof(link), "%s%.*s", conf->token.base_url, TOKEN_LEN,
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	tz_civil_from_days(r->due_date, &vars.due_year, &vars.due_month, &vars.due_day);
	if (template_render_sms(conf->templates.fr, conf->templates.en, conf->templates.transliterate,
	        r->lang, &vars, text, sizeof(text), err, sizeof(err)) == -1)
		return 1;
	if (gsm_analyze(text, &info) == 0 && info.segments > 0)
		segments = info.segments;
	return segments;
}

/* The first instant the rules allow the row at or after at; 0 when none (final, in flight, never). */
static int64_t
plan_first(const struct dry_row *r, int64_t at)
{
	if (r->reason == POLICY_SEND)
		return at;
	switch (r->reason) {
	case POLICY_SCHEDULE:
	case POLICY_NOTICE:
	case POLICY_HOLIDAY:
	case POLICY_WINDOW:
	case POLICY_CAP:
	case POLICY_GAP:
		return r->next_at;
	default:
		return 0;
	}
}

/* Each group's window at at: the one open now, else the one its earliest row opens. */
static void
plan_windows(struct plan *p, const struct policy_rules *rules, const struct dry_row *rows, int n, int64_t at)
{
	int i, g;

	for (i = 0; i < n; i++) {
		int64_t f = plan_first(&rows[i], at);

		if (f == 0)
			continue;
		g = plan_group_of(p, rows[i].region, rows[i].time_zone);
		if (p->groups[g].opens == 0 || f < p->groups[g].opens)
			p->groups[g].opens = f;
	}
	for (g = 0; g < p->ngroups; g++) {
		struct plan_group *pg = &p->groups[g];

		if (policy_open(rules, pg->region, pg->zone, at, &pg->closes, &pg->day_start) == 1)
			pg->opens = at;
		pg->usable = pg->opens != 0 &&
		    policy_open(rules, pg->region, pg->zone, pg->opens, &pg->closes, &pg->day_start) == 1;
	}
}

/* The daemon's order within a group: rows left over first, then by first instant, next look (those
 * nobody has looked at first), due date, id. */
static int
plan_row_cmp(const void *a, const void *b)
{
	const struct plan_row *x = *(const struct plan_row *const *)a,
	                      *y = *(const struct plan_row *const *)b;

	if (x->left_over != y->left_over)
		return y->left_over - x->left_over;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	if (x->look != y->look)
		return x->look < y->look ? -1 : 1;
	if (x->due_date != y->due_date)
		return x->due_date < y->due_date ? -1 : 1;
	return (x->due_id > y->due_id) - (x->due_id < y->due_id);
}

/* The rows that may go in their group's window, queued in the daemon's order. */
static void
plan_queue(struct plan *p, const struct conf *conf, const struct dry_row *rows, int n, int64_t at)
{
	int i, g;

	if ((p->rows = calloc((size_t)(n > 0 ? n : 1), sizeof(*p->rows))) == NULL)
		fatal("plan");
	for (i = 0; i < n; i++) {
		int64_t f = plan_first(&rows[i], at);
		struct plan_group *pg;
		struct plan_row *r;

		if (f == 0)
			continue;
		pg = &p->groups[g = plan_group_of(p, rows[i].region, rows[i].time_zone)];
		if (!pg->usable || f > pg->closes - conf->rules.window_guard_s)
			continue;
		r = &p->rows[p->nrows++];
		r->group = g;
		r->first = f;
		r->look = rows[i].next_look;
		r->due_date = rows[i].due_date;
		r->due_id = rows[i].due_id;
		r->left_over =
		    rows[i].next_look > STORE_LOOKED_AT && rows[i].next_look < (double)pg->day_start;
		r->segments = plan_segments(conf, &rows[i]);
		pg->reminders++;
		pg->segments += r->segments;
	}
	for (g = 0; g < p->ngroups; g++)
		if ((p->groups[g].queue =
		            calloc((size_t)(p->groups[g].reminders + 1), sizeof(struct plan_row *))) == NULL)
			fatal("plan");
	for (i = 0; i < p->nrows; i++) {
		struct plan_group *pg = &p->groups[p->rows[i].group];

		pg->queue[pg->nqueue++] = &p->rows[i];
	}
	for (g = 0; g < p->ngroups; g++)
		qsort(
		    p->groups[g].queue, (size_t)p->groups[g].nqueue, sizeof(struct plan_row *), plan_row_cmp);
}

/* Send at rate segments per second (0: no wait) from at, as the daemon orders it: rows left over from an
 * earlier day first, then the window that closes first; a row goes no earlier than the rules allow and
 * no later than its window's close less the guard, else it slips. */
static void
plan_simulate(struct plan *p, double rate, int guard, int64_t at)
{
	double t = (double)at;

	for (;;) {
		int best = -1, g;
		double wake = INFINITY;

		for (g = 0; g < p->ngroups; g++) {
			struct plan_group *pg = &p->groups[g];
			const struct plan_row *h;

			if (pg->head >= pg->nqueue)
				continue;
			h = pg->queue[pg->head];
			if (fmax(t, (double)h->first) > (double)(pg->closes - guard)) {
				pg->slipped += pg->nqueue - pg->head; /* its window closed first */
				pg->head = pg->nqueue;
				continue;
			}
			if ((double)h->first > t) {
				wake = fmin(wake, (double)h->first);
				continue;
			}
			if (best == -1 ||
			    h->left_over > p->groups[best].queue[p->groups[best].head]->left_over ||
			    (h->left_over == p->groups[best].queue[p->groups[best].head]->left_over &&
			        pg->closes < p->groups[best].closes))
				best = g;
		}
		if (best == -1) {
			if (isinf(wake))
				return;
			t = wake;
			continue;
		}
		{
			struct plan_group *pg = &p->groups[best];
			const struct plan_row *h = pg->queue[pg->head++];

			if (pg->first_send == 0)
				pg->first_send = (int64_t)t;
			pg->last_send = (int64_t)t;
			pg->sent++;
			if (rate > 0)
				t += h->segments / rate;
		}
	}
}

static int
plan_group_cmp(const void *a, const void *b)
{
	const struct plan_group *x = a, *y = b;
	int c;

	if (x->usable != y->usable)
		return y->usable - x->usable;
	if (x->closes != y->closes)
		return x->closes < y->closes ? -1 : 1;
	return (c = strcmp(x->region, y->region)) != 0 ? c : strcmp(x->zone, y->zone);
}

static json_t *
plan_json_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || gmtime_r(&tt, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static void
plan_print_json(const struct plan *p)
{
	json_t *arr = json_array();
	int g;

	for (g = 0; g < p->ngroups; g++) {
		const struct plan_group *pg = &p->groups[g];

		if (pg->reminders == 0)
			continue;
		json_array_append_new(arr,
		    json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:I}", "region", pg->region, "time_zone",
		        pg->zone, "reminders", (json_int_t)pg->reminders, "segments",
		        (json_int_t)pg->segments, "window_closes", plan_json_time(pg->closes), "first_send",
		        plan_json_time(pg->first_send), "last_send", plan_json_time(pg->last_send), "slipped",
		        (json_int_t)pg->slipped));
	}
	ctl_json_print(arr);
	json_decref(arr);
}

static void
plan_print_table(const struct plan *p, const char *at_text)
{
	char closes[40], first[40], last[40];
	json_t *utc;
	long reminders = 0, segments = 0, slipped = 0;
	int g;

	printf("%-6s %-22s %9s %8s  %-24s %-20s  %-24s %-24s %7s\n", "REGION", "TIME ZONE", "REMINDERS",
	    "SEGMENTS", "WINDOW CLOSES (local)", "(UTC)", "FIRST SEND (local)", "LAST SEND (local)",
	    "SLIPPED");
	for (g = 0; g < p->ngroups; g++) {
		const struct plan_group *pg = &p->groups[g];

		if (pg->reminders == 0)
			continue;
		ctl_local_time(pg->zone, pg->closes, closes, sizeof(closes));
		snprintf(first, sizeof(first), "-");
		snprintf(last, sizeof(last), "-");
		if (pg->first_send != 0) {
			ctl_local_time(pg->zone, pg->first_send, first, sizeof(first));
			ctl_local_time(pg->zone, pg->last_send, last, sizeof(last));
		}
		utc = plan_json_time(pg->closes);
		printf("%-6s %-22s %9ld %8ld  %-24s %-20s  %-24s %-24s %7ld\n", pg->region, pg->zone,
		    pg->reminders, pg->segments, closes, json_string_value(utc), first, last, pg->slipped);
		json_decref(utc);
		reminders += pg->reminders;
		segments += pg->segments;
		slipped += pg->slipped;
	}
	printf(
	    "%ld reminder%s (%ld segments) may go in their current or next window as of %s; %ld would slip "
	    "to the window after\n",
	    reminders, reminders == 1 ? "" : "s", segments, at_text, slipped);
}

/* Live daemons whose gateway breaker is not closed, one line each on fp; how many. -1 on error. */
static int
plan_breakers(struct ctl *ctl, FILE *fp, int *rc)
{
	PGresult *res = ctl_exec(ctl,
	    "SELECT hostname, pid, circuit, " CTL_TS(
	        "circuit_since") " FROM payremind.instances"
	                         " WHERE stopped_at IS NULL AND heartbeat_at > "
	                         "now() - interval '" CTL_LIVE_S " seconds'"
	                         "   AND circuit <> 'closed' ORDER BY hostname, pid",
	    0, NULL, rc);
	int i, n;

	if (res == NULL)
		return -1;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		fprintf(fp,
		    "the gateway breaker of payremindd %s[%s] is %s since %s: it claims nothing but a probe "
		    "meanwhile, the other daemons take what it leaves and the plan counts without it (see its "
		    "journal and payremindctl status)\n",
		    PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    strcmp(PQgetvalue(res, i, 2), "open") == 0 ? "OPEN" : "HALF OPEN (probing)",
		    PQgetvalue(res, i, 3));
	PQclear(res);
	return n;
}

/* The rate the day goes at (segments per second, 0 unpaced): each short code's rate (as its live
 * daemons record it, SPEC §11) summed over the codes with a live daemon whose breaker is closed (a
 * half-open one is still failing until its probe says otherwise); with none, this configuration's.
 * Said on fp. 0, or -1 on error. */
static int
plan_rate(struct ctl *ctl, const struct conf *conf, FILE *fp, double *rate, int *rc)
{
	PGresult *res = ctl_exec(ctl,
	    "SELECT short_code, count(*), avg(rate_per_second), bool_or(rate_per_second = 0)"
	    "  FROM payremind.instances"
	    " WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '" CTL_LIVE_S " seconds'"
	    "   AND circuit = 'closed' AND short_code IS NOT NULL AND rate_per_second IS NOT NULL"
	    " GROUP BY short_code ORDER BY short_code",
	    0, NULL, rc);
	int i, n, unpaced = 0;

	if (res == NULL)
		return -1;
	*rate = 0;
	if ((n = PQntuples(res)) == 0)
		*rate = conf->gateway.rate_per_second;
	for (i = 0; i < n; i++) {
		*rate += strtod(PQgetvalue(res, i, 2), NULL);
		unpaced |= PQgetvalue(res, i, 3)[0] == 't';
	}
	if (unpaced || !(*rate > 0)) {
		*rate = 0;
		fprintf(
		    fp, "rate: unpaced (gateway.rate_per_second 0): each reminder at its first instant\n");
	} else if (n == 0)
		fprintf(fp,
		    "rate: %g segments per second for %s (gateway.rate_per_second; no daemon is sending)\n",
		    *rate, conf->short_code);
	else {
		fprintf(fp, "rate: %g segments per second:", *rate);
		for (i = 0; i < n; i++)
			fprintf(fp, "%s %s at %g (%s daemon%s)", i > 0 ? "," : "", PQgetvalue(res, i, 0),
			    strtod(PQgetvalue(res, i, 2), NULL), PQgetvalue(res, i, 1),
			    strcmp(PQgetvalue(res, i, 1), "1") == 0 ? "" : "s");
		fprintf(fp, "\n");
	}
	PQclear(res);
	return 0;
}

static void
plan_free(struct plan *p)
{
	int g;

	for (g = 0; g < p->ngroups; g++)
		free(p->groups[g].queue);
	free(p->groups);
	free(p->rows);
}

int
ctl_cmd_plan(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "at", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct conf *conf;
	const char *at_opt = NULL;
	char at_text[64], note[400];
	struct plan p = { 0 };
	struct dry_row *rows;
	PGresult *res;
	FILE *notes;
	double at = 0, rate;
	int ch, json = 0, rc, n, paused;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'T':
			at_opt = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return ctl_help("plan");
		default:
			return ctl_bad_option("plan", ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error("plan", "unexpected argument %s", argv[optind]);
	if (at_opt != NULL && !ctl_matches(CTL_AT_RE, at_opt))
		return ctl_usage_error(
		    "plan", "--at %s: give ISO 8601 with an offset, e.g. 2026-11-30T09:00:00-05:00", at_opt);
	ctl_connect(ctl);
	conf = ctl->conf;
	if ((rc = ctl_run(ctl, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0)
		return rc;
	if ((rc = ctl_instant(ctl, "plan", at_opt, &at, at_text, sizeof(at_text))) != 0)
		return rc;
	notes = json ? stderr : stdout; /* --json keeps standard output to the array */
	if ((paused = ctl_paused(ctl, note, sizeof(note), &rc)) == -1)
		return rc;
	if (paused)
		fprintf(notes, "%s; the plan below is what would happen if it resumed now\n", note);
	if (plan_breakers(ctl, notes, &rc) == -1)
		return rc;
	if (plan_rate(ctl, conf, notes, &rate, &rc) == -1)
		return rc;
	if ((rc = dry_load(ctl, at, NULL, 0, &rows, &n, &res)) != 0)
		return rc;
	plan_windows(&p, &conf->rules, rows, n, (int64_t)floor(at));
	plan_queue(&p, conf, rows, n, (int64_t)floor(at));
	plan_simulate(&p, rate, conf->rules.window_guard_s, (int64_t)floor(at));
	/* the queues point into rows: sort the groups for printing once the simulation is done */
	qsort(p.groups, (size_t)p.ngroups, sizeof(p.groups[0]), plan_group_cmp);
	if (json)
		plan_print_json(&p);
	else
		plan_print_table(&p, at_text);
	plan_free(&p);
	free(rows);
	PQclear(res);
	return ctl_run(ctl, "COMMIT");
}
