/* payremindctl: the operators' tool, one function per sub-command (migrate, batch, status, optout,
 * report). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
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
#include "payremind/migrate.h"
#include "payremind/html.h"
#include "payremind/policy.h"
#include "payremind/report.h"
#include "payremind/tz.h"

#define CTL_POLL_MS 200          /* batch: how often to look at the request */
#define CTL_TIMEOUT_DEFAULT 30.0 /* batch --timeout */
#define CTL_TIMEOUT_MAX 86400.0  /* a day: anything longer is a typo */
#define CTL_LIVE_S "20"          /* a daemon is live with a heartbeat younger than this (seconds) */
#define CTL_UNKNOWN_SHOWN 10     /* status: unknown reminders listed */
#define CTL_MSISDN_RE "^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$"
#define CTL_MSISDN_FORMAT "+1NPANXXXXXX, e.g. +15145550123"
/* ISO 8601 with an explicit offset; PostgreSQL then checks the fields themselves. */
#define CTL_AT_RE                                                                   \
	"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?" \
	"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
/* A timestamp as ISO 8601 with the session's offset (UTC for --json). */
#define CTL_TS(x) "to_char(" x ", 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"

static const char *const ctl_states[] = { "queued", "sending", "sent", "delivered", "failed", "expired",
	"cancelled", "unknown" };

struct ctl {
	const char *conf_path;
	struct conf *conf;
	PGconn *conn;
	const char *cmd; /* the sub-command running, for messages */
};

struct ctl_command {
	const char *name;
	const char *synopsis;
	const char *help; /* what --help adds under the usage line */
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

static const struct ctl_command *ctl_find(const char *name);

static void
ctl_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: payremindctl [-c FILE] migrate\n"
	    "       payremindctl [-c FILE] batch [--account REF] [--timeout S] [--dry-run [--at TIMESTAMP] "
	    "[--json]]\n"
	    "       payremindctl [-c FILE] status [--json]\n"
	    "       payremindctl [-c FILE] optout add|remove|list [MSISDN]\n"
	    "       payremindctl [-c FILE] report [--since DATE] [--until DATE] [--by step|language|region|day]\n"
	    "                                      [--json | --html FILE]\n"
	    "       payremindctl [-h|--help] [-V|--version]\n");
}

/* A usage error: the reason, then the command's usage line; returns 64. */
static int PR_PRINTF(2, 3) ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	const struct ctl_command *c = ctl_find(cmd);
	va_list ap;

	fprintf(stderr, "payremindctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: payremindctl [-c FILE] %s\n", c != NULL ? c->synopsis : cmd);
	return EX_USAGE;
}

static int
ctl_help(const char *cmd)
{
	const struct ctl_command *c = ctl_find(cmd);

	printf("usage: payremindctl [-c FILE] %s\n%s", c->synopsis, c->help);
	return 0;
}

/* The usage error for what getopt_long refused (ch is '?' or ':'; opterr is off). */
static int
ctl_bad_option(const char *cmd, int ch, char **argv)
{
	const char *opt = argv[optind - 1];

	if (ch == ':')
		return ctl_usage_error(cmd, "option %s needs a value", opt);
	if (optopt != 0 && opt[0] == '-' && opt[1] != '-') {
		static char buf[3] = "-?";

		buf[1] = (char)optopt;
		opt = buf;
	}
	return ctl_usage_error(cmd, "unknown option %s", opt);
}

/* Start a fresh getopt_long scan of a sub-command's arguments (argv[0] is the sub-command). */
static void
ctl_getopt_reset(void)
{
	optind = 0;
	opterr = 0;
}

/* Server messages above NOTICE (warnings) go to stderr; the chatter of idempotent DDL does not. */
static void
ctl_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	(void)arg;
	if (sev == NULL || strcmp(sev, "WARNING") == 0)
		fprintf(stderr, "payremindctl: %s", PQresultErrorMessage(res));
}

/* Load the configuration (exit 78 with every error) and connect (exit 69 with what to do). */
static void
ctl_connect(struct ctl *ctl)
{
	ctl->conf = conf_load_or_exit(ctl->conf_path, CONF_NO_SECRETS);
	ctl->conn = PQconnectdb(ctl->conf->db_conninfo);
	if (PQstatus(ctl->conn) != CONNECTION_OK) {
		char *msg = PQerrorMessage(ctl->conn);

		msg[strcspn(msg, "\n")] = '\0';
		fprintf(stderr, "payremindctl: database unavailable: %s; check database.conninfo in %s\n",
		    msg, ctl->conf_path);
		exit(EX_UNAVAILABLE);
	}
	PQsetNoticeReceiver(ctl->conn, ctl_notice, NULL);
}

/* Report a failed statement on one line, with what to do; the exit code for it. */
static int
ctl_db_failed(const struct ctl *ctl, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char conn_msg[512];

	if (msg == NULL) {
		snprintf(conn_msg, sizeof(conn_msg), "%s", PQerrorMessage(ctl->conn));
		conn_msg[strcspn(conn_msg, "\n")] = '\0';
		msg = conn_msg;
	}
	if (state != NULL && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0)) {
		fprintf(stderr,
		    "payremindctl %s: %s: the schema is missing or old; run payremindctl -c %s migrate\n",
		    ctl->cmd, msg, ctl->conf_path);
		return EX_UNAVAILABLE;
	}
	fprintf(stderr, "payremindctl %s: database error: %s; check the database (database.conninfo in %s)\n",
	    ctl->cmd, msg, ctl->conf_path);
	return EX_UNAVAILABLE;
}

/* Run one statement with text parameters. The result, or NULL once the error is reported (*rc set). */
static PGresult *
ctl_exec(struct ctl *ctl, const char *sql, int n, const char *const *params, int *rc)
{
	PGresult *res = PQexecParams(ctl->conn, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	*rc = ctl_db_failed(ctl, res);
	PQclear(res);
	return NULL;
}

/* A statement whose result is not needed. 0, or the exit code once the error is reported. */
static int
ctl_run(struct ctl *ctl, const char *sql)
{
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, sql, 0, NULL, &rc)) != NULL)
		PQclear(res);
	return rc;
}

/* 1 when s matches the extended regular expression re (both trusted constants or argument text). */
static int
ctl_matches(const char *re, const char *s)
{
	regex_t rx;
	int ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		fatalx("regcomp %s", re);
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

static int64_t
ctl_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int
ctl_bool(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col)[0] == 't';
}

/* A text column as a JSON string, or null for SQL NULL. */
static json_t *
ctl_json_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static void
ctl_json_print(json_t *root)
{
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

static void
ctl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

/* Sub-commands that take no options still answer --help and refuse anything else. */
static int
ctl_no_args(const char *cmd, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		ctl_help(cmd);
		exit(0);
	}
	if (argc > 1)
		return ctl_usage_error(cmd, "unexpected argument %s", argv[1]);
	return 0;
}

static int
ctl_migrate(struct ctl *ctl, int argc, char **argv)
{
	char err[1024];
	int applied, rc;

	if ((rc = ctl_no_args("migrate", argc, argv)) != 0)
		return rc;
	ctl_connect(ctl);
	if (migrate_apply(ctl->conn, &applied, err, sizeof(err)) == -1) {
		fprintf(stderr, "payremindctl migrate: %s\n", err);
		return EX_DATAERR;
	}
	if (applied == 0)
		printf("schema up to date\n");
	else
		printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
	return 0;
}

/* ---- batch --------------------------------------------------------------------------------------- */

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
	if (!o->dry_run && o->account != NULL)
		return ctl_usage_error(
		    "batch", "--account needs --dry-run: a daemon's batch always covers every due row");
	if (!o->dry_run && (o->at != NULL || o->json))
		return ctl_usage_error("batch", "%s needs --dry-run", o->at != NULL ? "--at" : "--json");
	if (o->at != NULL && !ctl_matches(CTL_AT_RE, o->at))
		return ctl_usage_error(
		    "batch", "--at %s: give ISO 8601 with an offset, e.g. 2026-11-30T09:00:00-05:00", o->at);
	return 0;
}

/* ---- batch --dry-run: decide every open due row as the scheduler would, sending nothing ----------- */

/* One open due row with the step the scheduler would consider next. Strings point into the result. */
struct dry_row {
	int64_t due_id;
	const char *account_ref, *msisdn, *region, *time_zone, *rem_state;
	int32_t due_date, notice_sent_on;
	int step, settled, held, opted_out, paid, shown;
	double next_attempt_at; /* of the step's queued reminder, 0 when none */
	struct policy_history hist;
	/* the decision */
	enum policy_reason reason;
	int64_t next_at;  /* first instant it may go, 0 when none (final skips, or none in 400 days) */
	const char *note; /* why next_at is not a time, for the table */
};

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
    "  $3::text IS NULL OR d.account_ref = $3::text, d.paid_at IS NOT NULL"
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
	if (r->reason == POLICY_SEND)
		json_object_set_new(pending, r->msisdn, json_true());
}

/* Instant t in zone as "2026-11-30 08:00 -05:00". */
static void
dry_local_time(const char *zone, int64_t t, char *buf, size_t len)
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
		    json_pack("{s:s, s:I, s:i, s:s, s:o}", "account_ref", r->account_ref, "due_account_id",
		        (json_int_t)r->due_id, "step", r->step, "decision",
		        r->reason == POLICY_SEND ? "send" : "skip", "reason",
		        r->reason == POLICY_SEND ? json_null()
		                                 : json_string(policy_reason_to_text(r->reason))));
	}
	ctl_json_print(arr);
	json_decref(arr);
}

/* The table, then the totals per reason. */
static void
dry_print_table(const struct dry_row *rows, int n, const char *at_text)
{
	int counts[POLICY_GAP + 1] = { 0 };
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
			dry_local_time(r->time_zone, r->next_at, next, sizeof(next));
		printf("%-*s %10" PRId64 " %4d  %-8s  %-14s  %s\n", width, r->account_ref, r->due_id, r->step,
		    r->reason == POLICY_SEND ? "send" : "skip",
		    r->reason == POLICY_SEND ? "-" : policy_reason_to_text(r->reason), next);
	}
	printf("%d open due row%s as of %s (dry run: nothing sent or created)", shown, shown == 1 ? "" : "s",
	    at_text);
	for (i = 0; i <= POLICY_GAP; i++) {
		if (counts[i] == 0)
			continue;
		printf(
		    "%s %s %d", first ? ":" : ",", policy_reason_to_text((enum policy_reason)i), counts[i]);
		first = 0;
	}
	printf("\n");
}

/* The instant of --at (or the database's now) as epoch seconds and as text. 0, or the exit code. */
static int
dry_instant(struct ctl *ctl, const char *at, double *epoch, char *text, size_t len)
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
		    "batch", "--at %s: not a valid date and time; e.g. 2026-11-30T09:00:00-05:00", at);
	} else
		rc = ctl_db_failed(ctl, res);
	PQclear(res);
	return rc;
}

/* batch --dry-run: one read-only transaction; nothing is sent, created or changed. */
static int
batch_dry_run(struct ctl *ctl, const struct batch_opts *o)
{
	char at_text[64], at_epoch[48], steps[16];
	const char *v[3] = { at_epoch, steps, o->account };
	struct dry_row *rows;
	PGresult *res;
	json_t *pending;
	double at = 0;
	int rc, n, i;

	if ((rc = ctl_run(ctl, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0)
		return rc;
	if ((rc = dry_instant(ctl, o->at, &at, at_text, sizeof(at_text))) != 0)
		return rc;
	snprintf(at_epoch, sizeof(at_epoch), "%.6f", at);
	snprintf(steps, sizeof(steps), "%d", ctl->conf->rules.noffsets);
	if ((res = ctl_exec(ctl, dry_sql_rows, 3, v, &rc)) == NULL)
		return rc;
	n = PQntuples(res);
	if ((rows = calloc((size_t)(n > 0 ? n : 1), sizeof(*rows))) == NULL)
		fatal("batch --dry-run");
	pending = json_object();
	for (i = 0; i < n; i++) {
		dry_row_parse(res, i, &rows[i]);
		dry_decide(&ctl->conf->rules, &rows[i], (int64_t)floor(at), pending);
	}
	if (o->json)
		dry_print_json(rows, n);
	else
		dry_print_table(rows, n, at_text);
	json_decref(pending);
	free(rows);
	PQclear(res);
	return ctl_run(ctl, "COMMIT");
}

/* ---- batch: ask the running daemons ----------------------------------------------------------------- */

static const char batch_sql_request[] =
    "WITH r AS (INSERT INTO payremind.batch_requests DEFAULT VALUES RETURNING id)"
    " SELECT id, pg_notify('payremind_batch', id::text) FROM r";

static const char batch_sql_poll[] =
    "SELECT b.picked_by, b.finished_at IS NOT NULL, coalesce(i.hostname, '?'),"
    "  b.sent, b.failed, b.retried, b.unknown, b.skipped, b.cancelled, b.error"
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
	printf("batch %s done by %s: sent=%ld failed=%ld retried=%ld unknown=%ld skipped=%ld cancelled=%ld\n",
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

static int
ctl_batch(struct ctl *ctl, int argc, char **argv)
{
	struct batch_opts o = { 0 };
	char id[32];
	PGresult *res;
	int rc, done;

	if ((rc = batch_parse(argc, argv, &o, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	if (o.dry_run)
		return batch_dry_run(ctl, &o);
	if ((res = ctl_exec(ctl, batch_sql_request, 0, NULL, &rc)) == NULL)
		return rc;
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return batch_wait(ctl, id, o.timeout);
}

/* ---- status ------------------------------------------------------------------------------------------ */

static const char status_sql_states[] = "SELECT state, count(*) FROM payremind.reminders GROUP BY state";

static const char status_sql_oldest[] = "SELECT r.id, d.account_ref, r.step, r.attempts, " CTL_TS(
    "r.created_at") ","
                    "  floor(extract(epoch FROM now() - r.created_at))::bigint, " CTL_TS(
                        "r.next_attempt_at") " FROM payremind.reminders r JOIN payremind.due_accounts d ON "
                                             "d.id = r.due_account_id"
                                             " WHERE r.state = 'queued' ORDER BY r.created_at, r.id LIMIT 1";

static const char status_sql_unknown[] = "SELECT r.id, d.account_ref, r.step, " CTL_TS(
    "r.sent_at") ", r.last_error"
                 " FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id"
                 " WHERE r.state = 'unknown' ORDER BY r.sent_at NULLS LAST, r.id LIMIT 10";

static const char status_sql_opt_outs[] = "SELECT count(*) FROM payremind.opt_outs";

static const char status_sql_daemons[] = "SELECT id, hostname, pid, version, " CTL_TS(
    "started_at") ","
                  "  floor(extract(epoch FROM now() - heartbeat_at))::bigint, status, " CTL_TS(
                      "last_batch_at") " FROM payremind.instances"
                                       " WHERE stopped_at IS NULL AND heartbeat_at > now() - interval "
                                       "'" CTL_LIVE_S " seconds'"
                                       " ORDER BY started_at, id";

/* The most recent batch: a daemon's own record of its last batch, or a finished operator request. */
static const char status_sql_last_batch[] = "SELECT " CTL_TS(
    "b.at") ", b.daemon, i.hostname, b.request_id, b.figures::text, b.error FROM ("
            "  SELECT last_batch_at AS at, id AS daemon, NULL::bigint AS request_id, last_batch AS figures,"
            "         NULL::text AS error, 1 AS pref"
            "    FROM payremind.instances WHERE last_batch_at IS NOT NULL"
            "  UNION ALL"
            "  SELECT finished_at, picked_by, id, jsonb_build_object('sent', sent, 'failed', failed,"
            "         'retried', retried, 'unknown', unknown, 'skipped', skipped, 'cancelled', cancelled), "
            "error, 0"
            "    FROM payremind.batch_requests WHERE finished_at IS NOT NULL) b"
            " LEFT JOIN payremind.instances i ON i.id = b.daemon"
            " ORDER BY b.at DESC, b.pref DESC LIMIT 1";

static json_t *
status_states(const PGresult *res)
{
	json_t *o = json_object();
	size_t k;
	int i;

	for (k = 0; k < sizeof(ctl_states) / sizeof(ctl_states[0]); k++)
		json_object_set_new(o, ctl_states[k], json_integer(0));
	for (i = 0; i < PQntuples(res); i++)
		json_object_set_new(o, PQgetvalue(res, i, 0), json_integer(ctl_int(res, i, 1)));
	return o;
}

static json_t *
status_oldest(const PGresult *res)
{
	if (PQntuples(res) == 0)
		return json_null();
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:o}", "id", PQgetvalue(res, 0, 0), "account_ref",
	    PQgetvalue(res, 0, 1), "step", (json_int_t)ctl_int(res, 0, 2), "attempts",
	    (json_int_t)ctl_int(res, 0, 3), "created_at", PQgetvalue(res, 0, 4), "age_s",
	    (json_int_t)ctl_int(res, 0, 5), "next_attempt_at", ctl_json_text(res, 0, 6));
}

static json_t *
status_unknown(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:s, s:I, s:o, s:o}", "id", PQgetvalue(res, i, 0), "account_ref",
		        PQgetvalue(res, i, 1), "step", (json_int_t)ctl_int(res, i, 2), "sent_at",
		        ctl_json_text(res, i, 3), "last_error", ctl_json_text(res, i, 4)));
	return a;
}

static json_t *
status_daemons(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:o}", "id", PQgetvalue(res, i, 0),
		        "hostname", PQgetvalue(res, i, 1), "pid", (json_int_t)ctl_int(res, i, 2), "version",
		        PQgetvalue(res, i, 3), "started_at", PQgetvalue(res, i, 4), "heartbeat_age_s",
		        (json_int_t)ctl_int(res, i, 5), "status", PQgetvalue(res, i, 6), "last_batch_at",
		        ctl_json_text(res, i, 7)));
	return a;
}

/* {"at", "daemon", "hostname", "request_id", <the figures>, "error"}, or null before any batch. */
static json_t *
status_last_batch(const PGresult *res)
{
	json_t *o, *figures;

	if (PQntuples(res) == 0)
		return json_null();
	o = json_pack("{s:s, s:o, s:o, s:o}", "at", PQgetvalue(res, 0, 0), "daemon", ctl_json_text(res, 0, 1),
	    "hostname", ctl_json_text(res, 0, 2), "request_id",
	    PQgetisnull(res, 0, 3) ? json_null() : json_integer((json_int_t)ctl_int(res, 0, 3)));
	figures = PQgetisnull(res, 0, 4) ? NULL : json_loads(PQgetvalue(res, 0, 4), 0, NULL);
	if (json_is_object(figures))
		json_object_update(o, figures);
	json_decref(figures);
	json_object_set_new(o, "error", ctl_json_text(res, 0, 5));
	return o;
}

/* One section: run sql, turn its rows into JSON under key. 0, or the exit code. */
static int
status_section(
    struct ctl *ctl, json_t *root, const char *key, const char *sql, json_t *(*fn)(const PGresult *))
{
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, sql, 0, NULL, &rc)) == NULL)
		return rc;
	json_object_set_new(root, key, fn(res));
	PQclear(res);
	return 0;
}

static json_t *
status_count(const PGresult *res)
{
	return json_integer(ctl_int(res, 0, 0));
}

/* The whole status in one consistent snapshot. NULL once an error is reported (*rc set). */
static json_t *
status_collect(struct ctl *ctl, int utc, int *rc)
{
	static const struct {
		const char *key, *sql;
		json_t *(*fn)(const PGresult *);
	} sections[] = {
		{ "reminders", status_sql_states, status_states },
		{ "oldest_queued", status_sql_oldest, status_oldest },
		{ "opt_outs", status_sql_opt_outs, status_count },
		{ "daemons", status_sql_daemons, status_daemons },
		{ "last_batch", status_sql_last_batch, status_last_batch },
		{ "unknown", status_sql_unknown, status_unknown },
	};
	json_t *root = json_object();
	size_t i;

	if ((*rc = ctl_run(ctl, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0 ||
	    (utc && (*rc = ctl_run(ctl, "SET LOCAL TIME ZONE 'UTC'")) != 0))
		goto fail;
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if ((*rc = status_section(ctl, root, sections[i].key, sections[i].sql, sections[i].fn)) != 0)
			goto fail;
	if ((*rc = ctl_run(ctl, "COMMIT")) != 0)
		goto fail;
	return root;
fail:
	json_decref(root);
	return NULL;
}

/* "3 min" and the like, for ages in the human output. */
static const char *
status_age(json_int_t s, char *buf, size_t len)
{
	if (s < 120)
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT " s", s);
	else if (s < 7200)
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT " min", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT " h", s / 3600);
	else
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT " days", s / 86400);
	return buf;
}

static const char *
status_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "-";
}

static json_int_t
status_int(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void
status_print_reminders(const json_t *root)
{
	const json_t *rem = json_object_get(root, "reminders"), *old = json_object_get(root, "oldest_queued");
	const char *key;
	json_t *v;
	char age[32];
	int first = 1;

	printf("reminders:");
	json_object_foreach((json_t *)rem, key, v)
	{
		printf("%s %s %" JSON_INTEGER_FORMAT, first ? "" : ",", key, json_integer_value(v));
		first = 0;
	}
	printf("\n");
	if (json_is_object(old))
		printf("oldest queued: %s (%s step %" JSON_INTEGER_FORMAT "), %s old, %" JSON_INTEGER_FORMAT
		       " attempt(s), next attempt %s\n",
		    status_str(old, "id"), status_str(old, "account_ref"), status_int(old, "step"),
		    status_age(status_int(old, "age_s"), age, sizeof(age)), status_int(old, "attempts"),
		    status_str(old, "next_attempt_at"));
	else
		printf("oldest queued: none\n");
}

static void
status_print_unknown(const json_t *root)
{
	json_int_t n = status_int(json_object_get(root, "reminders"), "unknown");
	const json_t *list = json_object_get(root, "unknown");
	size_t i;

	if (n == 0) {
		printf("unknown: none\n");
		return;
	}
	printf("unknown: %" JSON_INTEGER_FORMAT
	       " reminder%s may or may not have reached the phone and need%s a "
	       "decision (check the gateway's records for these ids; payremind never resends them)%s\n",
	    n, n == 1 ? "" : "s", n == 1 ? "s" : "",
	    n > (json_int_t)json_array_size(list) ? "; the first:" : ":");
	for (i = 0; i < json_array_size(list); i++) {
		const json_t *u = json_array_get(list, i);

		printf("  %s  %s step %" JSON_INTEGER_FORMAT "  sent %s  %s\n", status_str(u, "id"),
		    status_str(u, "account_ref"), status_int(u, "step"), status_str(u, "sent_at"),
		    status_str(u, "last_error"));
	}
}

static void
status_print_daemons(const json_t *root)
{
	const json_t *list = json_object_get(root, "daemons");
	char age[32];
	size_t i;

	if (json_array_size(list) == 0) {
		printf("daemons: none live (start payremindd, or run payremindd --once for one batch)\n");
		return;
	}
	printf("daemons: %zu live\n", json_array_size(list));
	for (i = 0; i < json_array_size(list); i++) {
		const json_t *d = json_array_get(list, i);

		printf("  %s  %s pid %" JSON_INTEGER_FORMAT "  version %s  heartbeat %s ago  %s\n",
		    status_str(d, "id"), status_str(d, "hostname"), status_int(d, "pid"),
		    status_str(d, "version"), status_age(status_int(d, "heartbeat_age_s"), age, sizeof(age)),
		    status_str(d, "status"));
	}
}

static void
status_print_last_batch(const json_t *root)
{
	static const char *const figures[] = { "sent", "failed", "retried", "unknown", "skipped",
		"cancelled" };
	const json_t *b = json_object_get(root, "last_batch");
	size_t i;

	if (!json_is_object(b)) {
		printf("last batch: none yet\n");
		return;
	}
	printf("last batch: %s by %s (%s):", status_str(b, "at"), status_str(b, "daemon"),
	    status_str(b, "hostname"));
	for (i = 0; i < sizeof(figures) / sizeof(figures[0]); i++)
		printf(" %s=%" JSON_INTEGER_FORMAT, figures[i], status_int(b, figures[i]));
	if (json_is_string(json_object_get(b, "error")))
		printf(" error: %s", status_str(b, "error"));
	printf("\n");
}

static int
ctl_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *root;
	int ch, json = 0, rc = 0;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'j')
			json = 1;
		else if (ch == 'h')
			return ctl_help("status");
		else
			return ctl_bad_option("status", ch, argv);
	}
	if (optind < argc)
		return ctl_usage_error("status", "unexpected argument %s", argv[optind]);
	ctl_connect(ctl);
	if ((root = status_collect(ctl, json, &rc)) == NULL)
		return rc;
	if (json) {
		ctl_json_print(root);
	} else {
		status_print_reminders(root);
		status_print_unknown(root);
		printf("opt-outs: %" JSON_INTEGER_FORMAT "\n", status_int(root, "opt_outs"));
		status_print_daemons(root);
		status_print_last_batch(root);
	}
	json_decref(root);
	return 0;
}

/* ---- optout ------------------------------------------------------------------------------------------ */

/* Opt the number out and cancel its queued reminders (payremind.opt_out_apply, as the STOP keyword
 * does); say whether it was new, and the source of an earlier opt-out. */
static const char optout_sql_add[] =
    "WITH before AS (SELECT (SELECT source FROM payremind.opt_outs WHERE msisdn = $1) AS source)"
    " SELECT (before.source IS NULL)::int, payremind.opt_out_apply($1, 'operator'),"
    "  coalesce(before.source, 'operator') FROM before";

/* Delete the opt-out (the opt_outs_wake trigger makes its parked due rows claimable again). */
static const char optout_sql_remove[] = "DELETE FROM payremind.opt_outs WHERE msisdn = $1 RETURNING source";

static const char optout_sql_list[] = "SELECT msisdn, source, " CTL_TS(
    "created_at") " FROM payremind.opt_outs"
                  " WHERE $1::text IS NULL OR msisdn = $1 ORDER BY created_at, msisdn";

static int
optout_add(struct ctl *ctl, const char *msisdn)
{
	const char *v[1] = { msisdn };
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, optout_sql_add, 1, v, &rc)) == NULL)
		return rc;
	if (ctl_int(res, 0, 0) == 1)
		printf("%s opted out", msisdn);
	else
		printf("%s was already opted out (source %s)", msisdn, PQgetvalue(res, 0, 2));
	printf("; %" PRId64 " queued reminder(s) cancelled\n", ctl_int(res, 0, 1));
	PQclear(res);
	return 0;
}

static int
optout_remove(struct ctl *ctl, const char *msisdn)
{
	const char *v[1] = { msisdn };
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, optout_sql_remove, 1, v, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0) {
		printf("%s was not opted out: nothing changed\n", msisdn);
	} else {
		if (strcmp(PQgetvalue(res, 0, 0), "operator") != 0)
			fprintf(stderr,
			    "payremindctl optout: note: %s had opted out by %s; remove that only at the "
			    "subscriber's request (texting START or RETOUR does it too)\n",
			    msisdn, PQgetvalue(res, 0, 0));
		printf("%s opted back in: its open due rows get reminders again\n", msisdn);
	}
	PQclear(res);
	return 0;
}

static int
optout_list(struct ctl *ctl, const char *msisdn)
{
	const char *v[1] = { msisdn };
	PGresult *res;
	int rc = 0, i;

	if ((res = ctl_exec(ctl, optout_sql_list, 1, v, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0 && msisdn != NULL) {
		printf("%s is not opted out\n", msisdn);
	} else {
		printf("%-13s %-9s %s\n", "MSISDN", "SOURCE", "SINCE");
		for (i = 0; i < PQntuples(res); i++)
			printf("%-13s %-9s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			    PQgetvalue(res, i, 2));
		printf("%d opt-out%s\n", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
	}
	PQclear(res);
	return 0;
}

static int
ctl_optout(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *action, *msisdn;
	int ch, list;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'h')
			return ctl_help("optout");
		return ctl_bad_option("optout", ch, argv);
	}
	if (optind >= argc)
		return ctl_usage_error("optout", "say add, remove or list");
	action = argv[optind];
	msisdn = optind + 1 < argc ? argv[optind + 1] : NULL;
	list = strcmp(action, "list") == 0;
	if (!list && strcmp(action, "add") != 0 && strcmp(action, "remove") != 0)
		return ctl_usage_error("optout", "unknown action %s: say add, remove or list", action);
	if (optind + 2 < argc)
		return ctl_usage_error("optout", "unexpected argument %s", argv[optind + 2]);
	if (!list && msisdn == NULL)
		return ctl_usage_error("optout", "%s needs the phone number (MSISDN)", action);
	if (msisdn != NULL && !ctl_matches(CTL_MSISDN_RE, msisdn)) {
		fprintf(stderr, "payremindctl optout: %s is not a North-American E.164 number: expected %s\n",
		    msisdn, CTL_MSISDN_FORMAT);
		return EX_DATAERR;
	}
	ctl_connect(ctl);
	if (list)
		return optout_list(ctl, msisdn);
	return strcmp(action, "add") == 0 ? optout_add(ctl, msisdn) : optout_remove(ctl, msisdn);
}

/* ---- report ------------------------------------------------------------------------------------------ */

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
    "   FROM r LEFT JOIN payremind.payment_tokens t ON t.reminder_id = r.id"
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

static int
ctl_report(struct ctl *ctl, int argc, char **argv)
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

static const struct ctl_command ctl_commands[] = {
	{ "migrate", "migrate",
	    "Apply the SQL migrations not yet recorded in payremind.schema_migrations (idempotent).\n",
	    ctl_migrate },
	{ "batch", "batch [--account REF] [--timeout S] [--dry-run [--at TIMESTAMP] [--json]]",
	    "Ask the running payremindd to run a batch now, wait for it and print its figures.\n"
	    "  --timeout S       seconds to wait for a daemon to pick the request, then for it to finish\n"
	    "                    (default 30); exit 69 when none does (payremindd --once runs a batch "
	    "in-process)\n"
	    "  --dry-run         send and create nothing: decide every open due row as the daemon would\n"
	    "  --at TIMESTAMP    decide as of this instant, ISO 8601 with an offset "
	    "(2026-11-30T09:00:00-05:00)\n"
	    "  --account REF     only the rows of this account_ref (with --dry-run)\n"
	    "  --json            one JSON object per open due row: account_ref, due_account_id, step,\n"
	    "                    decision (send|skip), reason (null when sent)\n",
	    ctl_batch },
	{ "status", "status [--json]",
	    "Reminders by state, the oldest queued one, unknown reminders needing a decision, opt-outs,\n"
	    "live daemons and the last batch.\n"
	    "  --json            the same as one JSON object\n",
	    ctl_status },
	{ "optout", "optout add|remove|list [MSISDN]",
	    "  add MSISDN        opt the number out (source operator) and cancel its queued reminders\n"
	    "  remove MSISDN     opt it back in: its due rows get reminders again\n"
	    "  list [MSISDN]     the opt-outs (or that number's)\n"
	    "MSISDN: " CTL_MSISDN_FORMAT "\n",
	    ctl_optout },
	{ "report",
	    "report [--since DATE] [--until DATE] [--by step|language|region|day] [--json | --html FILE]",
	    "The funnel from SMS to payment of the reminders created in the period: sent, delivered, failed,\n"
	    "unknown, opened (the link), checkout (the button), paid, opted out; each reminder once per stage.\n"
	    "  --since DATE      first local day (YYYY-MM-DD; default 29 days before --until)\n"
	    "  --until DATE      last local day, included (default today)\n"
	    "  --by KEY          group by step, language, region or day (default day)\n"
	    "  --json            one JSON object per group\n"
	    "  --html FILE       write one self-contained page: the funnel, the groups, a per-day chart\n",
	    ctl_report },
	{ NULL, NULL, NULL, NULL },
};

static const struct ctl_command *
ctl_find(const char *name)
{
	const struct ctl_command *c;

	for (c = ctl_commands; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const struct ctl_command *cmd;
	const char *env = getenv("PAYREMIND_CONFIG");
	int ch, rc;

	log_init("payremindctl", 0);
	ctl.conf_path = env != NULL && *env ? env : "/etc/payremind/payremind.conf";
	while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl.conf_path = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("payremindctl %s\n", PAYREMIND_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return EX_USAGE;
	}
	if ((cmd = ctl_find(argv[optind])) == NULL) {
		fprintf(stderr, "payremindctl: unknown command %s\n", argv[optind]);
		ctl_usage(stderr);
		return EX_USAGE;
	}
	ctl.cmd = cmd->name;
	rc = cmd->run(&ctl, argc - optind, argv + optind);
	PQfinish(ctl.conn);
	conf_free(ctl.conf);
	return rc;
}
