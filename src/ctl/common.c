/* payremindctl's helpers shared by the sub-commands: usage errors, the connection, queries, JSON output. */
#include <getopt.h>
#include <pwd.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/log.h"

#include "ctl.h"

/* Every reminder state, in the order of its life. */
const char *const ctl_states[CTL_NSTATES] = { "queued", "sending", "sent", "delivered", "failed", "expired",
	"cancelled", "unknown" };

/* A usage error: the reason, then the command's usage line; returns 64. */
int
ctl_usage_error(const char *cmd, const char *fmt, ...)
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

int
ctl_help(const char *cmd)
{
	const struct ctl_command *c = ctl_find(cmd);

	printf("usage: payremindctl [-c FILE] %s\n%s", c->synopsis, c->help);
	return 0;
}

/* The usage error for what getopt_long refused (ch is '?' or ':'; opterr is off). */
int
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
void
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
void
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
int
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
PGresult *
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
int
ctl_run(struct ctl *ctl, const char *sql)
{
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, sql, 0, NULL, &rc)) != NULL)
		PQclear(res);
	return rc;
}

/* 1 when s matches the extended regular expression re (both trusted constants or argument text). */
int
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

int64_t
ctl_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

void
ctl_json_print(json_t *root)
{
	json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

/* Who runs this command: the OS user (behind sudo, the user who ran sudo). */
const char *
ctl_actor(void)
{
	static char name[128];
	const char *sudo = getenv("SUDO_USER");
	struct passwd *pw;

	if (name[0] != '\0')
		return name;
	if ((pw = getpwuid(getuid())) != NULL)
		snprintf(name, sizeof(name), "%s", pw->pw_name);
	else
		snprintf(name, sizeof(name), "uid %u", (unsigned)getuid());
	if (getuid() == 0 && sudo != NULL && *sudo != '\0' && strlen(sudo) < 64)
		snprintf(name, sizeof(name), "%s (sudo)", sudo);
	return name;
}

/* A --reason for the record: one line of at most CTL_REASON_MAX bytes. 0, or 64 with the reason. */
int
ctl_check_reason(const char *cmd, const char *reason)
{
	const unsigned char *p;

	if (reason == NULL)
		return 0;
	if (*reason == '\0' || strlen(reason) > CTL_REASON_MAX)
		return ctl_usage_error(cmd, "--reason: give one line of 1 to %d characters", CTL_REASON_MAX);
	for (p = (const unsigned char *)reason; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return ctl_usage_error(cmd, "--reason: one line, without control characters");
	return 0;
}

/* Record an operator action (payremind.operator_actions): who, what, on what, why. Only the action is
 * required; the rest may be NULL. 0, or the exit code once the error is reported. */
int
ctl_record_action(struct ctl *ctl, const char *action, const char *reminder_id, const char *msisdn,
    const char *account_ref, const char *detail, const char *reason)
{
	const char *v[7] = { ctl_actor(), action, reminder_id, msisdn, account_ref, detail, reason };
	PGresult *res;
	int rc = 0;

	res = ctl_exec(ctl,
	    "INSERT INTO payremind.operator_actions (actor, action, reminder_id, msisdn, account_ref, detail,"
	    " reason) VALUES ($1, $2, $3::uuid, $4, $5, $6, $7)",
	    7, v, &rc);
	PQclear(res);
	return rc;
}

/* 1 when account_ref has a due row, 0 when not (the caller exits 65), -1 on error (*rc set). */
int
ctl_account_known(struct ctl *ctl, const char *account_ref, int *rc)
{
	const char *v[1] = { account_ref };
	PGresult *res = ctl_exec(
	    ctl, "SELECT EXISTS (SELECT 1 FROM payremind.due_accounts WHERE account_ref = $1)", 1, v, rc);
	int known;

	if (res == NULL)
		return -1;
	known = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return known;
}

/* How many daemons are live (a heartbeat within CTL_LIVE_S seconds), or -1 on error (*rc set). */
int
ctl_live_daemons(struct ctl *ctl, int *rc)
{
	PGresult *res = ctl_exec(ctl,
	    "SELECT count(*) FROM payremind.instances"
	    " WHERE stopped_at IS NULL AND heartbeat_at > now() - interval '" CTL_LIVE_S " seconds'",
	    0, NULL, rc);
	int n;

	if (res == NULL)
		return -1;
	n = (int)ctl_int(res, 0, 0);
	PQclear(res);
	return n;
}

/* A text column as a JSON string, or null for SQL NULL. */
json_t *
ctl_json_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

/* --since as epoch seconds in out (a DATE is local midnight in the session's time zone, read before any
 * switch to UTC for --json). 0, or the exit code once reported. */
int
ctl_since_epoch(struct ctl *ctl, const char *since, char *out, size_t len)
{
	const char *v[1] = { since };
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, "SELECT extract(epoch FROM $1::timestamptz)", 1, v, &rc)) == NULL)
		return rc;
	snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return 0;
}

/* A YYYY-MM-DD (or ISO 8601 with an offset) --since value: 0, or 64 with the reason. */
int
ctl_check_since(const char *cmd, const char *since)
{
	if (since == NULL || ctl_matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", since) ||
	    ctl_matches(CTL_AT_RE, since))
		return 0;
	return ctl_usage_error(cmd, "--since %s: give a date (YYYY-MM-DD) or ISO 8601 with an offset", since);
}
