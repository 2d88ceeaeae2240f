/* payremindctl status: reminders by state, the oldest queued, unknowns, opt-outs, daemons, the last batch. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "ctl.h"

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

static const char status_sql_paused[] = "SELECT " CTL_TS(
    "paused_at") ", paused_by, pause_reason,"
                 "  floor(extract(epoch FROM now() - paused_at))::bigint FROM payremind.control WHERE paused_at IS NOT NULL";

static const char status_sql_daemons[] = "SELECT id, hostname, pid, version, " CTL_TS(
    "started_at") ","
                  "  floor(extract(epoch FROM now() - heartbeat_at))::bigint, status, " CTL_TS(
                      "last_batch_at") ", circuit, " CTL_TS("circuit_since") " FROM payremind.instances"
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
            "         'retried', retried, 'unknown', unknown, 'rows_skipped', rows_skipped, 'rows_closed', rows_closed), "
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

	for (k = 0; k < CTL_NSTATES; k++)
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
		    json_pack("{s:s, s:s, s:I, s:s, s:s, s:I, s:s, s:o, s:s, s:o}", "id",
		        PQgetvalue(res, i, 0), "hostname", PQgetvalue(res, i, 1), "pid",
		        (json_int_t)ctl_int(res, i, 2), "version", PQgetvalue(res, i, 3), "started_at",
		        PQgetvalue(res, i, 4), "heartbeat_age_s", (json_int_t)ctl_int(res, i, 5), "status",
		        PQgetvalue(res, i, 6), "last_batch_at", ctl_json_text(res, i, 7), "circuit",
		        PQgetvalue(res, i, 8), "circuit_since", ctl_json_text(res, i, 9)));
	return a;
}

/* {"since", "by", "reason", "age_s"} while sending is paused, else null. */
static json_t *
status_paused(const PGresult *res)
{
	if (PQntuples(res) == 0)
		return json_null();
	return json_pack("{s:s, s:s, s:o, s:I}", "since", PQgetvalue(res, 0, 0), "by", PQgetvalue(res, 0, 1),
	    "reason", ctl_json_text(res, 0, 2), "age_s", (json_int_t)ctl_int(res, 0, 3));
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
		{ "paused", status_sql_paused, status_paused },
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
		if (strcmp(status_str(d, "circuit"), "closed") != 0)
			printf("    GATEWAY CIRCUIT %s since %s: the gateway has been failing; this daemon "
			       "sends nothing new until a probe succeeds (see its log)\n",
			    strcmp(status_str(d, "circuit"), "open") == 0 ? "OPEN" : "HALF OPEN (probing)",
			    status_str(d, "circuit_since"));
	}
}

static void
status_print_paused(const json_t *root)
{
	const json_t *p = json_object_get(root, "paused");
	char age[32];

	if (!json_is_object(p)) {
		printf("sending: on\n");
		return;
	}
	printf("sending: PAUSED since %s (%s) by %s: %s; payremindctl resume restarts it\n",
	    status_str(p, "since"), status_age(status_int(p, "age_s"), age, sizeof(age)), status_str(p, "by"),
	    json_is_string(json_object_get(p, "reason")) ? status_str(p, "reason") : "no reason given");
}

static void
status_print_last_batch(const json_t *root)
{
	static const char *const figures[] = { "sent", "failed", "retried", "unknown", "rows_skipped",
		"rows_closed" };
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

int
ctl_cmd_status(struct ctl *ctl, int argc, char **argv)
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
		status_print_paused(root);
		status_print_reminders(root);
		status_print_unknown(root);
		printf("opt-outs: %" JSON_INTEGER_FORMAT "\n", status_int(root, "opt_outs"));
		status_print_daemons(root);
		status_print_last_batch(root);
	}
	json_decref(root);
	return 0;
}
