/* payremindctl report: the funnel from SMS to payment over a period, as text, JSON or one HTML page. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/html.h"
#include "payremind/log.h"
#include "payremind/report.h"

#include "ctl.h"

#define CTL_DATE_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

/* The funnel of the reminders created between $1 and $2 (local dates in ARO's zone, both included),
 * grouped by $3: each reminder counts once per stage. Sent: the gateway took it (a report may have
 * failed it since); opened and checkout: its link; paid: a `paid` result for it; opted out: its number
 * opted out after it was sent. */
static const char report_sql[] =
    "WITH r AS ("
    " SELECT r.id, r.step, r.language, d.region, r.state, r.sent_at, r.msisdn, r.dlr_status,"
    "        (r.created_at AT TIME ZONE 'America/Toronto')::date AS day"
    "   FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id"
    "  WHERE r.created_at >= ($1::date)::timestamp AT TIME ZONE 'America/Toronto'"
    "    AND r.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'America/Toronto')"
    " SELECT CASE $3 WHEN 'step' THEN r.step::text WHEN 'language' THEN r.language"
    "                WHEN 'region' THEN r.region ELSE r.day::text END,"
    "  count(*) FILTER (WHERE r.state IN ('sent', 'delivered') OR (r.state = 'failed' AND r.dlr_status IS NOT NULL)),"
    "  count(*) FILTER (WHERE r.state = 'delivered'),"
    "  count(*) FILTER (WHERE r.state = 'failed'),"
    "  count(*) FILTER (WHERE r.state = 'unknown'),"
    "  count(*) FILTER (WHERE t.first_opened_at IS NOT NULL),"
    "  count(*) FILTER (WHERE t.redeemed_at IS NOT NULL),"
    "  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM payremind.payments p"
    "                                 WHERE p.reminder_id = r.id AND p.status = 'paid')),"
    "  count(*) FILTER (WHERE EXISTS (SELECT 1 FROM payremind.opt_outs o"
    "                                 WHERE o.msisdn = r.msisdn AND o.created_at >= r.sent_at))"
    /* a reminder retried by an operator has a second token: each reminder counts once */
    "   FROM r LEFT JOIN LATERAL (SELECT min(x.first_opened_at) AS first_opened_at,"
    "                                   min(x.redeemed_at) AS redeemed_at"
    "                              FROM payremind.payment_tokens x WHERE x.reminder_id = r.id) t ON true"
    "  GROUP BY 1 ORDER BY CASE WHEN $3 = 'step' THEN min(r.step) END, 1";

/* The groups of one report query, or NULL once the error is reported (*rc set). */
static struct report_group *
report_fetch(struct ctl *ctl, const char *since, const char *until, const char *by, int *n, int *rc)
{
	const char *v[3] = { since, until, by };
	struct report_group *g;
	PGresult *res;
	int i, s;

	if ((res = ctl_exec(ctl, report_sql, 3, v, rc)) == NULL)
		return NULL;
	*n = PQntuples(res);
	if ((g = calloc((size_t)*n + 1, sizeof(*g))) == NULL)
		fatal("report");
	for (i = 0; i < *n; i++) {
		snprintf(g[i].key, sizeof(g[i].key), "%s", PQgetvalue(res, i, 0));
		for (s = 0; s < REPORT_NSTAGES; s++)
			g[i].n[s] = (long)ctl_int(res, i, s + 1);
	}
	PQclear(res);
	return g;
}

/* Write the HTML page to path (mode 0644: it holds counts only, no personal data). */
static int
report_write_html(const char *path, const char *by, const char *period, const struct report_group *g, int n,
    const struct report_group *days, int ndays)
{
	struct html h;
	FILE *fp;
	int ok;

	html_init(&h);
	report_html(&h, by, period, g, n, days, ndays);
	if (h.failed || (fp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "payremindctl report: cannot write %s: %s\n", path,
		    h.failed ? "out of memory" : strerror(errno));
		html_free(&h);
		return EX_CANTCREAT;
	}
	ok = fputs(html_str(&h), fp) != EOF;
	ok = fclose(fp) == 0 && ok;
	html_free(&h);
	if (!ok) {
		fprintf(stderr, "payremindctl report: cannot write %s: %s\n", path, strerror(errno));
		return EX_IOERR;
	}
	return 0;
}

/* The default period: the 30 local days up to today. */
static void
report_default_dates(char since[16], char until[16])
{
	time_t now = time(NULL), before = now - 29 * 86400;
	struct tm tm;

	strftime(until, 16, "%Y-%m-%d", localtime_r(&now, &tm));
	strftime(since, 16, "%Y-%m-%d", localtime_r(&before, &tm));
}

int
ctl_cmd_report(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "until", required_argument, NULL, 'u' },
		{ "by", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "html", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char dsince[16], duntil[16], period[64];
	const char *since = NULL, *until = NULL, *by = "day", *html = NULL;
	struct report_group *g, *days = NULL;
	int ch, json = 0, rc = 0, n, ndays = 0;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 's')
			since = optarg;
		else if (ch == 'u')
			until = optarg;
		else if (ch == 'b')
			by = optarg;
		else if (ch == 'j')
			json = 1;
		else if (ch == 'H')
			html = optarg;
		else if (ch == 'h')
			return ctl_help("report");
		else
			return ctl_bad_option("report", ch, argv);
	}
	if (optind < argc)
		return ctl_usage_error("report", "unexpected argument %s", argv[optind]);
	if (strcmp(by, "step") != 0 && strcmp(by, "language") != 0 && strcmp(by, "region") != 0 &&
	    strcmp(by, "day") != 0)
		return ctl_usage_error("report", "--by %s: one of step, language, region, day", by);
	if ((since != NULL && !ctl_matches(CTL_DATE_RE, since)) ||
	    (until != NULL && !ctl_matches(CTL_DATE_RE, until)))
		return ctl_usage_error("report", "dates are YYYY-MM-DD, e.g. 2026-12-01");
	if (json && html != NULL)
		return ctl_usage_error("report", "--json and --html are exclusive");
	report_default_dates(dsince, duntil);
	since = since != NULL ? since : dsince;
	until = until != NULL ? until : duntil;
	ctl_connect(ctl);
	if ((g = report_fetch(ctl, since, until, by, &n, &rc)) == NULL)
		return rc;
	if (html != NULL && (days = report_fetch(ctl, since, until, "day", &ndays, &rc)) == NULL) {
		free(g);
		return rc;
	}
	snprintf(period, sizeof(period), "Reminders created from %s to %s", since, until);
	if (json) {
		json_t *root = report_json(by, g, n);

		ctl_json_print(root);
		json_decref(root);
	} else if (html != NULL)
		rc = report_write_html(html, by, period, g, n, days, ndays);
	else {
		printf("%s\n", period);
		report_text(stdout, by, g, n);
	}
	free(g);
	free(days);
	return rc;
}
