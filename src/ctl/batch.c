/* payremindctl batch: asks the daemons for a batch and waits for it, or --dry-run decides every row. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/log.h"
#include "payremind/loop.h"
#include "payremind/policy.h"
#include "payremind/tz.h"

#include "ctl.h"

static int
ctl_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

static void
ctl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

struct batch_opts {
	const char *account;
	const char *at;
	double timeout;
	int dry_run, json;
};

/* Parse batch's options into o. 0, or the exit code (64 with the reason; 0 after --help: *done set). */
static int
batch_parse(int argc, char **argv, struct batch_opts *o, int *done)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "at", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int ch;

	*done = 0;
	o->timeout = CTL_TIMEOUT_DEFAULT;
	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if (*optarg == '\0')
				return ctl_usage_error("batch", "--account needs an account_ref");
			o->account = optarg;
			break;
		case 't':
			o->timeout = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !isfinite(o->timeout) || o->timeout <= 0 ||
			    o->timeout > CTL_TIMEOUT_MAX)
				return ctl_usage_error("batch",
				    "--timeout %s: give a number of seconds greater than 0 and at most 86400",
				    optarg);
			break;
		case 'n':
			o->dry_run = 1;
			break;
		case 'T':
			o->at = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		case 'h':
			*done = 1;
			return ctl_help("batch");
		default:
			return ctl_bad_option("batch", ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error("batch", "unexpected argument %s", argv[optind]);
	if (!o->dry_run && (o->at != NULL || o->json))
		return ctl_usage_error("batch", "%s needs --dry-run", o->at != NULL ? "--at" : "--json");
	if (o->at != NULL && !ctl_matches(CTL_AT_RE, o->at))
		return ctl_usage_error(
		    "batch", "--at %s: give ISO 8601 with an offset, e.g. 2026-11-30T09:00:00-05:00", o->at);
	return 0;
}

static int
batch_unknown_account(const char *account)
{
	fprintf(stderr, "payremindctl batch: no due row has account_ref %s\n", account);
	return EX_DATAERR;
}

/* 1 when sending is paused (note says by whom, since when, why), 0 when not, -1 on error (*rc set). */
int
ctl_paused(struct ctl *ctl, char *note, size_t len, int *rc)
{
	PGresult *res = ctl_exec(ctl,
	    "SELECT " CTL_TS("paused_at") ", paused_by, coalesce(pause_reason, 'no reason given')"
	                                  " FROM payremind.control WHERE paused_at IS NOT NULL",
	    0, NULL, rc);
	int paused;

	if (res == NULL)
		return -1;
	if ((paused = PQntuples(res) == 1))
		snprintf(note, len, "sending is paused since %s by %s: %s (payremindctl resume restarts it)",
		    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	PQclear(res);
	return paused;
}

/* ---- batch --dry-run: decide every open due row as the scheduler would, sending nothing ----------- */

/* Open due rows: reminders remain (the first step from next_step without a final reminder). The step's
 * reminder (queued or sending) and the number's contacts (sent in the 7 days up to $1, or in progress)
 * come along, as in the scheduler's claim. $3: only the numbers of that account (other rows still count: they share the caps). */
static const char dry_sql_rows[] =
    "SELECT d.id, d.account_ref, d.msisdn, d.region, d.time_zone,"
    "  d.due_date - DATE '1970-01-01', coalesce(d.notice_sent_on - DATE '1970-01-01', -2147483648),"
    "  s.step, d.settled_at IS NOT NULL, d.contact_hold IS NOT NULL,"
    "  EXISTS (SELECT 1 FROM payremind.opt_outs o WHERE o.msisdn = d.msisdn),"
    "  coalesce(r.state, ''), coalesce(extract(epoch FROM r.next_attempt_at), 0),"
    "  ARRAY(SELECT h.t FROM (SELECT floor(extract(epoch FROM coalesce(x.sent_at, x.created_at)))::bigint AS "
    "t"
    "          FROM payremind.reminders x WHERE x.msisdn = d.msisdn"
    "           AND ((x.sent_at > to_timestamp($1::float8) - interval '7 days'"
    "                 AND x.sent_at <= to_timestamp($1::float8)) OR x.state IN ('queued', 'sending'))"
    "           AND NOT (x.due_account_id = d.id AND x.step = s.step)"
    "         ORDER BY 1 DESC LIMIT 32) h ORDER BY h.t),"
    "  $3::text IS NULL OR d.account_ref = $3::text, d.paid_at IS NOT NULL,"
    "  d.language, d.amount_cents, d.currency, coalesce(extract(epoch FROM d.next_at)::float8, 'Infinity')"
    " FROM payremind.due_accounts d"
    " CROSS JOIN LATERAL (SELECT min(g)::int AS step FROM generate_series(d.next_step::int, $2::int - 1) g"
    "   WHERE NOT EXISTS (SELECT 1 FROM payremind.reminders f WHERE f.due_account_id = d.id AND f.step = g"
    "                       AND f.state NOT IN ('queued', 'sending'))) s"
    " LEFT JOIN payremind.reminders r ON r.due_account_id = d.id AND r.step = s.step"
    " WHERE s.step IS NOT NULL"
    "   AND ($3::text IS NULL OR d.msisdn IN"
    "        (SELECT a.msisdn FROM payremind.due_accounts a WHERE a.account_ref = $3::text))"
    " ORDER BY d.next_at NULLS LAST, d.id";

/* "{1,2,3}" (epoch seconds, oldest first) -> h. */
static void
dry_parse_history(const char *s, struct policy_history *h)
{
	char *end;

	h->ncontacts = 0;
	if (*s == '{')
		s++;
	while (*s != '\0' && *s != '}' && h->ncontacts < POLICY_MAX_HISTORY) {
		h->contacts[h->ncontacts] = strtoll(s, &end, 10);
		if (end == s)
			return;
		h->ncontacts++;
		s = *end == ',' ? end + 1 : end;
	}
}

static void
dry_row_parse(const PGresult *res, int i, struct dry_row *r)
{
	memset(r, 0, sizeof(*r));
	r->due_id = ctl_int(res, i, 0);
	r->account_ref = PQgetvalue(res, i, 1);
	r->msisdn = PQgetvalue(res, i, 2);
	r->region = PQgetvalue(res, i, 3);
	r->time_zone = PQgetvalue(res, i, 4);
	r->due_date = (int32_t)ctl_int(res, i, 5);
	r->notice_sent_on = (int32_t)ctl_int(res, i, 6);
	r->step = (int)ctl_int(res, i, 7);
	r->settled = ctl_bool(res, i, 8);
	r->held = ctl_bool(res, i, 9);
	r->opted_out = ctl_bool(res, i, 10);
	r->rem_state = PQgetvalue(res, i, 11);
	r->next_attempt_at = strtod(PQgetvalue(res, i, 12), NULL);
	dry_parse_history(PQgetvalue(res, i, 13), &r->hist);
	r->shown = ctl_bool(res, i, 14);
	r->paid = ctl_bool(res, i, 15);
	r->lang = PQgetvalue(res, i, 16);
	r->amount_cents = ctl_int(res, i, 17);
	r->currency = PQgetvalue(res, i, 18);
	r->next_look = strtod(PQgetvalue(res, i, 19), NULL);
}

/* Skips that no waiting cures: checked before the scheduler's own rules. */
static int
dry_final(enum policy_reason reason)
{
	return reason == POLICY_SETTLED || reason == POLICY_PAID || reason == POLICY_HELD ||
	    reason == POLICY_OPTED_OUT || reason == POLICY_UNKNOWN_REGION;
}

/* When a queued retry at t may go: t when the rules allow it then, else their next instant. */
static int64_t
dry_retry_next(
    const struct policy_rules *rules, const struct policy_row *pr, const struct policy_history *h, int64_t t)
{
	struct policy_decision dec;

	if (policy_decide(rules, pr, h, t, &dec) == -1)
		return 0;
	return dec.reason == POLICY_SEND ? t : dec.next_at;
}

/* Decide one row at `at` as the scheduler would: the contact rules (policy_decide) on the row, its
 * number's contacts and the sends this run already decided for that number (`pending`, as the scheduler's
 * own pending list), then the scheduler's rules: a step in flight or queued for a later retry waits
 * (schedule). A zone the host's tzdata lacks is never contacted, as a region without rules. */
static void
dry_decide(const struct policy_rules *rules, struct dry_row *r, int64_t at, json_t *pending)
{
	struct policy_row pr = { r->region, r->time_zone, r->due_date, r->notice_sent_on, r->step, r->settled,
		r->held, r->opted_out, r->paid };
	struct policy_decision dec;

	if (json_object_get(pending, r->msisdn) != NULL && r->hist.ncontacts < POLICY_MAX_HISTORY)
		r->hist.contacts[r->hist.ncontacts++] = at;
	if (policy_decide(rules, &pr, &r->hist, at, &dec) == -1) {
		r->reason = POLICY_UNKNOWN_REGION;
		r->note = "time zone unknown to this host";
		return;
	}
	r->reason = dec.reason;
	r->next_at = dec.next_at;
	if (dry_final(dec.reason))
		return;
	if (strcmp(r->rem_state, "sending") == 0) {
		r->reason = POLICY_SCHEDULE;
		r->next_at = 0;
		r->note = "being sent now";
		return;
	}
	if (strcmp(r->rem_state, "queued") == 0 && r->next_attempt_at > (double)at) {
		r->reason = POLICY_SCHEDULE;
		r->next_at = dry_retry_next(rules, &pr, &r->hist, (int64_t)ceil(r->next_attempt_at));
		return;
	}
	if (r->reason == POLICY_SEND && r->paused) {
		r->reason = POLICY_PAUSED;
		r->next_at = 0;
		r->note = "when an operator resumes sending";
		return;
	}
	if (r->reason == POLICY_SEND)
		json_object_set_new(pending, r->msisdn, json_true());
}

/* Instant t in zone as "2026-11-30 08:00 -05:00". */
void
ctl_local_time(const char *zone, int64_t t, char *buf, size_t len)
{
	struct tz_local lt;
	int64_t off;

	if (tz_to_local(zone, t, &lt) == -1) {
		snprintf(buf, len, "?");
		return;
	}
	off = (int64_t)tz_days_from_civil(lt.year, lt.month, lt.day) * 86400 + lt.hour * 3600 +
	    lt.minute * 60 + lt.second - t;
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d %c%02d:%02d", lt.year, lt.month, lt.day, lt.hour,
	    lt.minute, off < 0 ? '-' : '+', (int)(llabs(off) / 3600), (int)(llabs(off) % 3600 / 60));
}

/* The first instant a skipped row may go, as UTC ISO 8601; null when sent, or when no time is known. */
static json_t *
dry_json_next(const struct dry_row *r)
{
	char buf[32];
	time_t t = (time_t)r->next_at;
	struct tm tm;

	if (r->reason == POLICY_SEND || r->note != NULL || r->next_at == 0 || gmtime_r(&t, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static void
dry_print_json(const struct dry_row *rows, int n)
{
	json_t *arr = json_array();
	int i;

	for (i = 0; i < n; i++) {
		const struct dry_row *r = &rows[i];

		if (!r->shown)
			continue;
		json_array_append_new(arr,
		    json_pack("{s:s, s:I, s:i, s:s, s:o, s:o}", "account_ref", r->account_ref,
		        "due_account_id", (json_int_t)r->due_id, "step", r->step, "decision",
		        r->reason == POLICY_SEND ? "send" : "skip", "reason",
		        r->reason == POLICY_SEND ? json_null()
		                                 : json_string(policy_reason_to_text(r->reason)),
		        "next_at", dry_json_next(r)));
	}
	ctl_json_print(arr);
	json_decref(arr);
}

/* The table, then the totals per reason. */
static void
dry_print_table(const struct dry_row *rows, int n, const char *at_text)
{
	int counts[POLICY_REASONS] = { 0 };
	int width = 7, shown = 0, i, first = 1;
	char next[64];

	for (i = 0; i < n; i++)
		if (rows[i].shown && (int)strlen(rows[i].account_ref) > width)
			width = (int)strlen(rows[i].account_ref);
	printf("%-*s %10s %4s  %-8s  %-14s  %s\n", width, "ACCOUNT", "DUE_ID", "STEP", "DECISION", "REASON",
	    "NEXT POSSIBLE (local time)");
	for (i = 0; i < n; i++) {
		const struct dry_row *r = &rows[i];

		if (!r->shown)
			continue;
		shown++;
		counts[r->reason]++;
		if (r->note != NULL)
			snprintf(next, sizeof(next), "%s", r->note);
		else if (r->reason == POLICY_SEND || dry_final(r->reason))
			snprintf(next, sizeof(next), "-");
		else if (r->next_at == 0)
			snprintf(next, sizeof(next), "none within 400 days");
		else
			ctl_local_time(r->time_zone, r->next_at, next, sizeof(next));
		printf("%-*s %10" PRId64 " %4d  %-8s  %-14s  %s\n", width, r->account_ref, r->due_id, r->step,
		    r->reason == POLICY_SEND ? "send" : "skip",
		    r->reason == POLICY_SEND ? "-" : policy_reason_to_text(r->reason), next);
	}
	printf("%d open due row%s as of %s (dry run: nothing sent or created)", shown, shown == 1 ? "" : "s",
	    at_text);
	for (i = 0; i < POLICY_REASONS; i++) {
		if (counts[i] == 0)
			continue;
		printf(
		    "%s %s %d", first ? ":" : ",", policy_reason_to_text((enum policy_reason)i), counts[i]);
		first = 0;
	}
	printf("\n");
}

/* The instant of --at (or the database's now) as epoch seconds and as text. 0, or the exit code. */
int
ctl_instant(struct ctl *ctl, const char *cmd, const char *at, double *epoch, char *text, size_t len)
{
	const char *v[1] = { at };
	PGresult *res = PQexecParams(ctl->conn,
	    "SELECT extract(epoch FROM coalesce($1::timestamptz, now()))::float8, " CTL_TS(
	        "coalesce($1::timestamptz, now())"),
	    1, NULL, v, NULL, NULL, 0);
	const char *state;
	int rc = 0;

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		*epoch = strtod(PQgetvalue(res, 0, 0), NULL);
		snprintf(text, len, "%s", at != NULL ? at : PQgetvalue(res, 0, 1));
	} else if ((state = PQresultErrorField(res, PG_DIAG_SQLSTATE)) != NULL &&
	    strncmp(state, "22", 2) == 0) {
		rc = ctl_usage_error(
		    cmd, "--at %s: not a valid date and time; e.g. 2026-11-30T09:00:00-05:00", at);
	} else
		rc = ctl_db_failed(ctl, res);
	PQclear(res);
	return rc;
}

/* Every open due row (with account, only that account's numbers), decided at `at` as the scheduler
 * would, in next_at order; with paused, what would go reads `paused`. Strings point into *res. 0, or the
 * exit code. */
int
dry_load(struct ctl *ctl, double at, const char *account, int paused, struct dry_row **rows, int *n,
    PGresult **res)
{
	char at_epoch[48], steps[16];
	const char *v[3] = { at_epoch, steps, account };
	json_t *pending;
	int rc, i;

	snprintf(at_epoch, sizeof(at_epoch), "%.6f", at);
	snprintf(steps, sizeof(steps), "%d", ctl->conf->rules.noffsets);
	if ((*res = ctl_exec(ctl, dry_sql_rows, 3, v, &rc)) == NULL)
		return rc;
	*n = PQntuples(*res);
	if ((*rows = calloc((size_t)(*n > 0 ? *n : 1), sizeof(**rows))) == NULL)
		fatal("dry run");
	pending = json_object();
	for (i = 0; i < *n; i++) {
		dry_row_parse(*res, i, &(*rows)[i]);
		(*rows)[i].paused = paused;
		dry_decide(&ctl->conf->rules, &(*rows)[i], (int64_t)floor(at), pending);
	}
	json_decref(pending);
	return 0;
}

/* batch --dry-run: one read-only transaction; nothing is sent, created or changed. */
static int
batch_dry_run(struct ctl *ctl, const struct batch_opts *o)
{
	char at_text[64], note[400];
	struct dry_row *rows;
	PGresult *res;
	double at = 0;
	int rc, n, known, paused;

	if ((rc = ctl_run(ctl, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0)
		return rc;
	if ((rc = ctl_instant(ctl, "batch", o->at, &at, at_text, sizeof(at_text))) != 0)
		return rc;
	if (o->account != NULL && (known = ctl_account_known(ctl, o->account, &rc)) != 1)
		return known == 0 ? batch_unknown_account(o->account) : rc;
	if ((paused = ctl_paused(ctl, note, sizeof(note), &rc)) == -1)
		return rc;
	if ((rc = dry_load(ctl, at, o->account, paused, &rows, &n, &res)) != 0)
		return rc;
	if (o->json)
		dry_print_json(rows, n);
	else {
		if (paused)
			printf("%s\n", note);
		dry_print_table(rows, n, at_text);
	}
	free(rows);
	PQclear(res);
	return ctl_run(ctl, "COMMIT");
}

/* ---- batch: ask the running daemons ----------------------------------------------------------------- */

/* The request; with an account ($1), its open due rows are looked at now, whatever their next look
 * was (parked rows, whose steps are all done or closed, stay parked). */
static const char batch_sql_request[] =
    "WITH r AS (INSERT INTO payremind.batch_requests (account_ref) VALUES ($1) RETURNING id, requested_at),"
    " w AS (UPDATE payremind.due_accounts SET next_at = now()"
    "        WHERE $1::text IS NOT NULL AND account_ref = $1 AND next_at > now()"
    "          AND (lease_until IS NULL OR lease_until < now()) RETURNING 1)"
    " SELECT id, pg_notify('payremind_batch', id::text), (SELECT count(*) FROM w) FROM r";

/* What became of the account's due rows in this batch: each row's step reminder touched since the request. */
static const char batch_sql_account[] =
    "SELECT d.id, d.due_date, r.step, r.state, r.last_error"
    " FROM payremind.due_accounts d"
    " LEFT JOIN payremind.reminders r ON r.due_account_id = d.id"
    "  AND r.updated_at >= (SELECT requested_at FROM payremind.batch_requests WHERE id = $2)"
    " WHERE d.account_ref = $1 ORDER BY d.due_date, d.id, r.step";

static const char batch_sql_poll[] =
    "SELECT b.picked_by, b.finished_at IS NOT NULL, coalesce(i.hostname, '?'),"
    "  b.sent, b.failed, b.retried, b.unknown, b.rows_skipped, b.rows_closed, b.error"
    " FROM payremind.batch_requests b LEFT JOIN payremind.instances i ON i.id = b.picked_by"
    " WHERE b.id = $1";

static const char batch_sql_withdraw[] =
    "DELETE FROM payremind.batch_requests WHERE id = $1 AND picked_by IS NULL";

/* A figure of a finished request (NULL -> 0: the daemon did not report it). */
static long
batch_figure(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? 0 : strtol(PQgetvalue(res, 0, col), NULL, 10);
}

/* The finished request's result line; 69 when the daemon reports an error. */
static int
batch_report(const char *id, const PGresult *res)
{
	const char *daemon = PQgetvalue(res, 0, 0);

	if (!PQgetisnull(res, 0, 9)) {
		fprintf(stderr,
		    "payremindctl batch: batch %s failed on payremindd %s (%s): %s; see that daemon's log\n",
		    id, daemon, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 9));
		return EX_UNAVAILABLE;
	}
	printf(
	    "batch %s done by %s: sent=%ld failed=%ld retried=%ld unknown=%ld rows_skipped=%ld rows_closed=%ld\n",
	    id, daemon, batch_figure(res, 3), batch_figure(res, 4), batch_figure(res, 5),
	    batch_figure(res, 6), batch_figure(res, 7), batch_figure(res, 8));
	return 0;
}

/* Withdraw a request nobody picked. 1 when withdrawn, 0 when a daemon took it meanwhile, -1 on error. */
static int
batch_withdraw(struct ctl *ctl, const char *id, int *rc)
{
	const char *v[1] = { id };
	PGresult *res = ctl_exec(ctl, batch_sql_withdraw, 1, v, rc);
	int gone;

	if (res == NULL)
		return -1;
	gone = atoi(PQcmdTuples(res)) > 0;
	PQclear(res);
	return gone;
}

/* Wait for the request: picked within the timeout, then finished within the timeout again. */
static int
batch_wait(struct ctl *ctl, const char *id, double timeout)
{
	const char *v[1] = { id };
	double deadline = loop_mono_s() + timeout;
	int picked = 0, rc = 0, w;
	PGresult *res;

	for (;;) {
		ctl_sleep_ms(CTL_POLL_MS);
		if ((res = ctl_exec(ctl, batch_sql_poll, 1, v, &rc)) == NULL)
			return rc;
		if (PQntuples(res) == 0) {
			PQclear(res);
			fprintf(stderr,
			    "payremindctl batch: request %s was deleted by someone else; run the command "
			    "again\n",
			    id);
			return EX_UNAVAILABLE;
		}
		if (ctl_bool(res, 0, 1)) {
			rc = batch_report(id, res);
			PQclear(res);
			return rc;
		}
		if (!picked && !PQgetisnull(res, 0, 0)) {
			picked = 1;
			deadline = loop_mono_s() + timeout;
		}
		if (loop_mono_s() >= deadline && picked) {
			fprintf(stderr,
			    "payremindctl batch: batch %s is still running on payremindd %s (%s) after %g s; "
			    "see that daemon's log, or payremindctl status\n",
			    id, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 2), timeout);
			PQclear(res);
			return EX_UNAVAILABLE;
		}
		PQclear(res);
		if (loop_mono_s() < deadline)
			continue;
		if ((w = batch_withdraw(ctl, id, &rc)) == -1)
			return rc;
		if (w == 1) {
			fprintf(stderr,
			    "payremindctl batch: no payremindd picked up the request within %g s; is the "
			    "daemon "
			    "running? (payremindd --once runs a batch in-process)\n",
			    timeout);
			return EX_UNAVAILABLE;
		}
	}
}

/* What became of the account's due rows in batch id. */
static int
batch_account_report(struct ctl *ctl, const char *account, const char *id)
{
	const char *v[2] = { account, id };
	PGresult *res;
	int rc = 0, i;

	if ((res = ctl_exec(ctl, batch_sql_account, 2, v, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		printf("account %s, due row %s (due %s): ", account, PQgetvalue(res, i, 0),
		    PQgetvalue(res, i, 1));
		if (PQgetisnull(res, i, 2))
			printf("no reminder sent now (payremindctl batch --dry-run --account %s says why)\n",
			    account);
		else
			printf("reminder step %s %s%s%s\n", PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
			    PQgetisnull(res, i, 4) ? "" : ": ",
			    PQgetisnull(res, i, 4) ? "" : PQgetvalue(res, i, 4));
	}
	PQclear(res);
	return 0;
}

/* No daemon live: say so at once rather than wait out --timeout. 1 when some is, 0 when none, -1 on error. */
static int
batch_daemons_live(struct ctl *ctl, int *rc)
{
	int live = ctl_live_daemons(ctl, rc);

	if (live == 0)
		fprintf(stderr,
		    "payremindctl batch: no payremindd is running (no heartbeat in the last " CTL_LIVE_S
		    " s): start it, or run payremindd --once for one batch in-process\n");
	return live > 0 ? 1 : live;
}

int
ctl_cmd_batch(struct ctl *ctl, int argc, char **argv)
{
	struct batch_opts o = { 0 };
	char id[32], note[400];
	const char *v[1];
	PGresult *res;
	int rc, done, live, known;

	if ((rc = batch_parse(argc, argv, &o, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	if (o.dry_run)
		return batch_dry_run(ctl, &o);
	if (o.account != NULL && (known = ctl_account_known(ctl, o.account, &rc)) != 1)
		return known == 0 ? batch_unknown_account(o.account) : rc;
	if ((live = batch_daemons_live(ctl, &rc)) != 1)
		return live == 0 ? EX_UNAVAILABLE : rc;
	v[0] = o.account;
	if ((rc = ctl_run(ctl, "BEGIN")) != 0 || (res = ctl_exec(ctl, batch_sql_request, 1, v, &rc)) == NULL)
		return rc;
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (o.account != NULL &&
	    (rc = ctl_record_action(ctl, "batch", NULL, NULL, o.account, NULL, NULL)) != 0)
		return rc;
	if ((rc = ctl_run(ctl, "COMMIT")) != 0)
		return rc;
	if ((rc = batch_wait(ctl, id, o.timeout)) != 0)
		return rc;
	if (ctl_paused(ctl, note, sizeof(note), &rc) == 1)
		printf("%s\n", note);
	return o.account != NULL && rc == 0 ? batch_account_report(ctl, o.account, id) : rc;
}
