/* payremindctl reminders / resolve: list reminders (failed and unknown ones above all) and decide an unknown one. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/token.h"

#include "ctl.h"

#define REMINDERS_LIMIT_DEFAULT 50
#define REMINDERS_LIMIT_MAX 100000

/* $1 states (NULL: all), $2 created since, $3 limit; newest first. */
static const char reminders_sql[] =
    "SELECT r.id, d.account_ref, r.step, r.state, r.attempts, r.last_error, " CTL_TS(
        "r.created_at") ","
                        "  " CTL_TS(
                            "r.sent_at") ", r.short_code"
                                         " FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id"
                                         " WHERE ($1::text[] IS NULL OR r.state = ANY ($1::text[]))"
                                         "   AND ($2::float8 IS NULL OR r.created_at >= to_timestamp($2::float8))"
                                         " ORDER BY r.created_at DESC, r.id LIMIT $3::int";

/* "failed,unknown" -> "{failed,unknown}" after checking each name. 0, or 64 with the reason. */
static int
reminders_states_arg(const char *arg, char *out, size_t len)
{
	char buf[256], *save = NULL, *tok;
	size_t used = 0, k;

	if (strlen(arg) >= sizeof(buf) || *arg == '\0')
		return ctl_usage_error("reminders", "--state: give one or more states separated by commas");
	snprintf(buf, sizeof(buf), "%s", arg);
	used += (size_t)snprintf(out + used, len - used, "{");
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < CTL_NSTATES; k++)
			if (strcmp(tok, ctl_states[k]) == 0)
				break;
		if (k == CTL_NSTATES)
			return ctl_usage_error("reminders",
			    "--state %s: not a reminder state (queued, sending, sent, delivered, failed, expired, "
			    "cancelled, unknown)",
			    tok);
		used += (size_t)snprintf(out + used, len - used, "%s%s", used > 1 ? "," : "", tok);
	}
	snprintf(out + used, len - used, "}");
	return 0;
}

static void
reminders_print_json(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:s, s:I, s:s, s:I, s:o, s:s, s:o, s:s}", "id", PQgetvalue(res, i, 0),
		        "account_ref", PQgetvalue(res, i, 1), "step", (json_int_t)ctl_int(res, i, 2), "state",
		        PQgetvalue(res, i, 3), "attempts", (json_int_t)ctl_int(res, i, 4), "last_error",
		        ctl_json_text(res, i, 5), "created_at", PQgetvalue(res, i, 6), "sent_at",
		        ctl_json_text(res, i, 7), "short_code", PQgetvalue(res, i, 8)));
	ctl_json_print(a);
	json_decref(a);
}

static void
reminders_print_table(const PGresult *res, int limit)
{
	int i, n = PQntuples(res), width = 7;

	for (i = 0; i < n; i++)
		if ((int)strlen(PQgetvalue(res, i, 1)) > width)
			width = (int)strlen(PQgetvalue(res, i, 1));
	printf("%-36s  %-*s %4s  %-9s %3s  %-25s  %s\n", "ID", width, "ACCOUNT", "STEP", "STATE", "ATT",
	    "CREATED", "LAST ERROR");
	for (i = 0; i < n; i++)
		printf("%-36s  %-*s %4s  %-9s %3s  %-25s  %s\n", PQgetvalue(res, i, 0), width,
		    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		    PQgetvalue(res, i, 4), PQgetvalue(res, i, 6),
		    PQgetisnull(res, i, 5) ? "-" : PQgetvalue(res, i, 5));
	printf("%d reminder%s, newest first%s\n", n, n == 1 ? "" : "s",
	    n == limit ? "; there may be more: raise --limit or narrow --since" : "");
}

int
ctl_cmd_reminders(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "since", required_argument, NULL, 'S' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char states[300], limit_s[16], since[64], *end;
	const char *v[3] = { NULL, NULL, limit_s };
	long limit = REMINDERS_LIMIT_DEFAULT;
	int ch, json = 0, rc = 0;
	PGresult *res;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if ((rc = reminders_states_arg(optarg, states, sizeof(states))) != 0)
				return rc;
			v[0] = states;
			break;
		case 'S':
			v[1] = optarg;
			break;
		case 'l':
			limit = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || limit < 1 || limit > REMINDERS_LIMIT_MAX)
				return ctl_usage_error("reminders", "--limit %s: give a number from 1 to %d",
				    optarg, REMINDERS_LIMIT_MAX);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return ctl_help("reminders");
		default:
			return ctl_bad_option("reminders", ch, argv);
		}
	}
	if (optind < argc)
		return ctl_usage_error("reminders", "unexpected argument %s", argv[optind]);
	if ((rc = ctl_check_since("reminders", v[1])) != 0)
		return rc;
	snprintf(limit_s, sizeof(limit_s), "%ld", limit);
	ctl_connect(ctl);
	if (v[1] != NULL && (rc = ctl_since_epoch(ctl, v[1], since, sizeof(since))) != 0)
		return rc;
	if (v[1] != NULL)
		v[1] = since;
	if (json && (rc = ctl_run(ctl, "SET TIME ZONE 'UTC'")) != 0)
		return rc;
	if ((res = ctl_exec(ctl, reminders_sql, 3, v, &rc)) == NULL)
		return rc;
	if (json)
		reminders_print_json(res);
	else
		reminders_print_table(res, (int)limit);
	PQclear(res);
	return 0;
}

/* ---- resolve: an operator decides an `unknown` reminder ------------------------------------------------ */

/* The reminder and its due row, locked. */
static const char resolve_sql_lock[] =
    "SELECT r.state, r.step, d.next_step, d.account_ref, r.msisdn, d.settled_at IS NOT NULL"
    " FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id"
    " WHERE r.id = $1::uuid FOR UPDATE OF r, d";

/* sent or failed: the state; the reason why it was unknown stays in last_error. */
static const char resolve_sql_final[] =
    "UPDATE payremind.reminders SET state = $2, updated_at = now() WHERE id = $1::uuid AND state = 'unknown'";

/* retry: queued again at once with a new link ($2), the text rendered anew from today's templates; its
 * due row comes back to this step. */
static const char resolve_sql_retry[] =
    "WITH r AS (UPDATE payremind.reminders SET state = 'queued', next_attempt_at = now(), link_token = $2,"
    "             body = NULL, lease_owner = NULL, lease_until = NULL, updated_at = now()"
    "            WHERE id = $1::uuid AND state = 'unknown' RETURNING id, due_account_id, step)"
    " UPDATE payremind.due_accounts d SET next_step = r.step, next_at = now() FROM r"
    "  WHERE d.id = r.due_account_id";

/* The new link, its SHA-256 stored, given through payment_tokens: its trigger keeps the link the
 * reminder had (the person may have it) as an earlier one, valid until it expires. */
static const char resolve_sql_link[] =
    "INSERT INTO payremind.payment_tokens (token_hash, reminder_id, expires_at)"
    " VALUES (sha256(convert_to($2, 'UTF8')), $1::uuid, now() + make_interval(hours => $3::int))";

static int
resolve_parse(int argc, char **argv, const char **id, const char **as, const char **reason, int *done)
{
	static const struct option opts[] = {
		{ "as", required_argument, NULL, 'a' },
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*done = 0;
	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'a')
			*as = optarg;
		else if (ch == 'r')
			*reason = optarg;
		else if (ch == 'h') {
			*done = 1;
			return ctl_help("resolve");
		} else
			return ctl_bad_option("resolve", ch, argv);
	}
	if (optind >= argc)
		return ctl_usage_error("resolve", "give the id of the unknown reminder");
	*id = argv[optind];
	if (optind + 1 < argc)
		return ctl_usage_error("resolve", "unexpected argument %s", argv[optind + 1]);
	if (*as == NULL)
		return ctl_usage_error("resolve", "say --as sent, --as failed or --as retry");
	if (strcmp(*as, "sent") != 0 && strcmp(*as, "failed") != 0 && strcmp(*as, "retry") != 0)
		return ctl_usage_error("resolve", "--as %s: say sent, failed or retry", *as);
	if (!ctl_matches(
	        "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", *id)) {
		fprintf(stderr, "payremindctl resolve: %s is not a reminder id (a UUID)\n", *id);
		*done = 1;
		return EX_DATAERR;
	}
	return ctl_check_reason("resolve", *reason);
}

/* Apply the decision on the locked reminder. 0, or the exit code once reported. */
static int
resolve_apply(struct ctl *ctl, const char *id, const char *as, const PGresult *row)
{
	char token[TOKEN_LEN + 1], ttl[16];
	const char *v[3] = { id, as, NULL };
	PGresult *res;
	int rc = 0;

	if (strcmp(as, "retry") != 0) {
		res = ctl_exec(ctl, resolve_sql_final, 2, v, &rc);
		PQclear(res);
		return rc;
	}
	if (ctl_int(row, 0, 2) != ctl_int(row, 0, 1) + 1) {
		fprintf(stderr,
		    "payremindctl resolve: reminder %s is step %s but its due row has moved on to step %s: a retry "
		    "would go out of order; resolve it as sent or failed\n",
		    id, PQgetvalue(row, 0, 1), PQgetvalue(row, 0, 2));
		return EX_DATAERR;
	}
	token_generate(token);
	snprintf(ttl, sizeof(ttl), "%d", ctl->conf->token.ttl_hours);
	v[1] = token;
	v[2] = ttl;
	res = ctl_exec(ctl, resolve_sql_retry, 2, v, &rc);
	PQclear(res);
	if (rc == 0) {
		res = ctl_exec(ctl, resolve_sql_link, 3, v, &rc);
		PQclear(res);
	}
	explicit_bzero(token, sizeof(token));
	return rc;
}

int
ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv)
{
	const char *id = NULL, *as = NULL, *reason = NULL, *v[1];
	PGresult *row;
	int rc, done;

	if ((rc = resolve_parse(argc, argv, &id, &as, &reason, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	v[0] = id;
	if ((rc = ctl_run(ctl, "BEGIN")) != 0 || (row = ctl_exec(ctl, resolve_sql_lock, 1, v, &rc)) == NULL)
		return rc;
	if (PQntuples(row) == 0) {
		fprintf(stderr, "payremindctl resolve: no reminder %s\n", id);
		rc = EX_DATAERR;
	} else if (strcmp(PQgetvalue(row, 0, 0), "unknown") != 0) {
		fprintf(stderr,
		    "payremindctl resolve: reminder %s is %s, not unknown: only an unknown reminder is decided "
		    "by an operator\n",
		    id, PQgetvalue(row, 0, 0));
		rc = EX_DATAERR;
	} else if ((rc = resolve_apply(ctl, id, as, row)) == 0 &&
	    (rc = ctl_record_action(
	         ctl, "resolve", id, PQgetvalue(row, 0, 4), PQgetvalue(row, 0, 3), as, reason)) == 0 &&
	    (rc = ctl_run(ctl, "COMMIT")) == 0) {
		if (strcmp(as, "retry") == 0)
			printf(
			    "reminder %s (%s step %s) queued again: it goes with the next batch, with a new "
			    "payment link and the text of today's templates%s\n",
			    id, PQgetvalue(row, 0, 3), PQgetvalue(row, 0, 1),
			    PQgetvalue(row, 0, 5)[0] == 't'
			        ? " (its due row is settled: it will be cancelled)"
			        : "");
		else
			printf("reminder %s (%s step %s) resolved as %s by %s\n", id, PQgetvalue(row, 0, 3),
			    PQgetvalue(row, 0, 1), as, ctl_actor());
	}
	PQclear(row);
	return rc;
}
