/* payremindctl history: everything about one account or one phone number, in time order. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "ctl.h"

/* The due rows of the account ($1) or of the number ($2), as JSON objects. */
static const char history_sql_rows[] =
    "SELECT d.id, d.msisdn, json_build_object('due_account_id', d.id, 'account_ref', d.account_ref,"
    "  'msisdn', d.msisdn, 'amount_cents', d.amount_cents, 'currency', d.currency, 'due_date', d.due_date,"
    "  'language', d.language, 'region', d.region, 'time_zone', d.time_zone,"
    "  'notice_sent_on', d.notice_sent_on, 'contact_hold', d.contact_hold,"
    "  'settled_at', " CTL_TS("d.settled_at") ", 'paid_at', " CTL_TS(
        "d.paid_at") ","
                     "  'created_at', " CTL_TS(
                         "d.created_at") ", 'next_step', d.next_step,"
                                         "  'next_look_at', " CTL_TS(
                                             "nullif(d.next_at, '-infinity')") ")::text"
                                                                               " FROM payremind.due_accounts d WHERE d.account_ref = $1 OR d.msisdn = $2 ORDER BY d.due_date, d.id";

/* Every event of those due rows ($1) and numbers ($2): (at, kind, detail), in time order. The last
 * attempt of a reminder is the reminder row itself; earlier ones are in payremind.attempts. */
#define H_EV(at, kind, obj) \
	"SELECT " at " AS at, '" kind "' AS kind, json_strip_nulls(json_build_object(" obj ")) AS detail"
static const char
    history_sql_events
        [] = "WITH r AS (SELECT r.*, d.account_ref FROM payremind.reminders r"
             "            JOIN payremind.due_accounts d ON d.id = r.due_account_id WHERE r.due_account_id = ANY ($1::bigint[])),"
             " p AS (SELECT * FROM payremind.replies WHERE msisdn = ANY ($2::text[])),"
             " e AS (" H_EV("d.created_at", "due_row",
                 "'due_account_id', d.id, 'account_ref', d.account_ref, 'what', 'created',"
                 " 'amount_cents', d.amount_cents, 'currency', d.currency, 'due_date', d.due_date") "   FROM payremind.due_accounts d WHERE d.id = ANY ($1::bigint[])"
                                                                                                    " UNION ALL " H_EV(
                                                                                                        "d.settled_at", "due_row", "'due_account_id', d.id, 'account_ref', d.account_ref, 'what', 'settled'") "   FROM payremind.due_accounts d WHERE d.id = ANY ($1::bigint[]) AND d.settled_at IS NOT NULL"
                                                                                                                                                                                                              " UNION ALL " H_EV(
                                                                                                                                                                                                                  "r.created_at",
                                                                                                                                                                                                                  "reminder",
                                                                                                                                                                                                                  "'reminder_id', r.id, 'account_ref', r.account_ref, 'step', r.step,"
                                                                                                                                                                                                                  " 'msisdn', r.msisdn, 'short_code', r.short_code, 'language', r.language, 'state', r.state") "   FROM r"
                                                                                                                                                                                                                                                                                                               " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                   "a.ended_at",
                                                                                                                                                                                                                                                                                                                   "attempt",
                                                                                                                                                                                                                                                                                                                   "'reminder_id', a.reminder_id, 'step', r.step, 'attempt', a.attempt,"
                                                                                                                                                                                                                                                                                                                   " 'outcome', a.outcome, 'error', a.error, 'next_attempt_at', " CTL_TS("a.next_attempt_at")) "   FROM payremind.attempts a JOIN r ON r.id = a.reminder_id"
                                                                                                                                                                                                                                                                                                                                                                                                               " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                   "coalesce(r.sent_at, r.updated_at)",
                                                                                                                                                                                                                                                                                                                                                                                                                   "attempt",
                                                                                                                                                                                                                                                                                                                                                                                                                   "'reminder_id', r.id, 'step', r.step,"
                                                                                                                                                                                                                                                                                                                                                                                                                   " 'attempt', r.attempts, 'outcome', CASE WHEN r.state = 'unknown' THEN 'unknown'"
                                                                                                                                                                                                                                                                                                                                                                                                                   "   WHEN r.sent_at IS NOT NULL THEN 'sent' ELSE 'failed' END,"
                                                                                                                                                                                                                                                                                                                                                                                                                   " 'error', CASE WHEN r.sent_at IS NULL OR r.state = 'unknown' THEN r.last_error END,"
                                                                                                                                                                                                                                                                                                                                                                                                                   " 'gateway_message_id', r.gateway_message_id") "   FROM r WHERE r.attempts > 0 AND r.state IN ('sent', 'delivered', 'failed', 'unknown')"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                  " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "x.received_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "dlr",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                      "'reminder_id', x.reminder_id, 'reply_id', x.reply_id,"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                      " 'status', x.status, 'code', x.code, 'gateway', x.gateway") "   FROM payremind.dlr_events x WHERE x.reminder_id IN (SELECT id FROM r) OR x.reply_id IN (SELECT id FROM p)"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                   " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "i.received_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "inbound",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "'msisdn', i.msisdn, 'short_code', i.short_code, 'text', i.text,"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       " 'keyword', i.keyword, 'action', i.action") "   FROM payremind.inbound_messages i WHERE i.msisdn = ANY ($2::text[])"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                    " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "p.created_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "reply",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        "'reply_id', p.id, 'msisdn', p.msisdn, 'short_code', p.short_code,"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                        " 'reply', p.kind, 'language', p.language, 'state', p.state, 'sent_at', " CTL_TS("p.sent_at")) "   FROM p"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       " UNION ALL SELECT o.at, o.event, json_strip_nulls(json_build_object('msisdn', o.msisdn, 'source', o.source))"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "   FROM payremind.opt_out_events o WHERE o.msisdn = ANY ($2::text[])"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "t.first_opened_at", "link_opened", "'reminder_id', t.reminder_id, 'open_count', t.open_count") "   FROM payremind.payment_tokens t WHERE t.reminder_id IN (SELECT id FROM r) AND t.first_opened_at IS NOT NULL"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           " UNION ALL " H_EV("t.redeemed_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "checkout", "'reminder_id', t.reminder_id") "   FROM payremind.payment_tokens t WHERE t.reminder_id IN (SELECT id FROM r) AND t.redeemed_at IS NOT NULL"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "y.received_at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "payment",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               "'payment_id', y.id, 'reminder_id', y.reminder_id,"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                               " 'status', y.status, 'amount_cents', y.amount_cents") "   FROM payremind.payments y WHERE y.due_account_id = ANY ($1::bigint[])"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                      " UNION ALL " H_EV(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "k.at",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "operator",
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          "'actor', k.actor, 'action', k.action, 'reminder_id', k.reminder_id,"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                          " 'msisdn', k.msisdn, 'account_ref', k.account_ref, 'detail', k.detail, 'reason', k.reason") "   FROM payremind.operator_actions k WHERE k.reminder_id IN (SELECT id FROM r) OR k.msisdn = ANY ($2::text[])"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       "    OR k.account_ref IN (SELECT account_ref FROM payremind.due_accounts WHERE id = ANY ($1::bigint[])))"
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                       " SELECT " CTL_TS(
                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                                           "e.at") ", e.kind, e.detail::text FROM e ORDER BY e.at, e.kind";
#undef H_EV

struct history_opts {
	const char *account, *msisdn;
	int json;
};

static int
history_parse(int argc, char **argv, struct history_opts *o, int *done)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' },
		{ "msisdn", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*done = 0;
	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'a')
			o->account = optarg;
		else if (ch == 'm')
			o->msisdn = optarg;
		else if (ch == 'j')
			o->json = 1;
		else if (ch == 'h') {
			*done = 1;
			return ctl_help("history");
		} else
			return ctl_bad_option("history", ch, argv);
	}
	if (optind < argc)
		return ctl_usage_error("history", "unexpected argument %s", argv[optind]);
	if ((o->account == NULL) == (o->msisdn == NULL))
		return ctl_usage_error("history", "give either --account REF or --msisdn NUMBER");
	if (o->account != NULL && *o->account == '\0')
		return ctl_usage_error("history", "--account needs an account_ref");
	if (o->msisdn != NULL && !ctl_matches(CTL_MSISDN_RE, o->msisdn)) {
		fprintf(stderr,
		    "payremindctl history: %s is not a North-American E.164 number: expected %s\n", o->msisdn,
		    CTL_MSISDN_FORMAT);
		*done = 1;
		return EX_DATAERR;
	}
	return 0;
}

/* One value of an event for the terminal: strings as they are, control characters shown escaped. */
static void
history_print_value(const json_t *v)
{
	const char *s;
	char *dump;

	if (!json_is_string(v)) {
		if ((dump = json_dumps(v, JSON_ENCODE_ANY)) != NULL)
			fputs(dump, stdout);
		free(dump);
		return;
	}
	for (s = json_string_value(v); *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			printf("\\x%02x", (unsigned char)*s);
		else
			putchar(*s);
	}
}

static void
history_print_event(const char *at, const char *kind, const json_t *detail)
{
	const char *key;
	json_t *v;

	printf("%s  %-11s", at, kind);
	json_object_foreach((json_t *)detail, key, v)
	{
		printf(" %s=", key);
		if (strcmp(key, "text") == 0 || strcmp(key, "reason") == 0)
			putchar('"');
		history_print_value(v);
		if (strcmp(key, "text") == 0 || strcmp(key, "reason") == 0)
			putchar('"');
	}
	printf("\n");
}

static void
history_print_row(const json_t *r)
{
	const char *key;
	json_t *v;

	printf(" ");
	json_object_foreach((json_t *)r, key, v)
	{
		if (json_is_null(v))
			continue;
		printf(" %s=", key);
		history_print_value(v);
	}
	printf("\n");
}

/* The events of the due rows ids and numbers msisdns (array literals), appended to events. */
static int
history_events(struct ctl *ctl, const char *ids, const char *msisdns, json_t *events)
{
	const char *v[2] = { ids, msisdns };
	PGresult *res;
	int rc = 0, i;

	if ((res = ctl_exec(ctl, history_sql_events, 2, v, &rc)) == NULL)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		json_t *detail = json_loads(PQgetvalue(res, i, 2), 0, NULL);
		json_t *ev =
		    json_pack("{s:s, s:s}", "at", PQgetvalue(res, i, 0), "kind", PQgetvalue(res, i, 1));

		if (json_is_object(detail))
			json_object_update(ev, detail);
		json_decref(detail);
		json_array_append_new(events, ev);
	}
	PQclear(res);
	return 0;
}

/* The human form: the due rows, then one line per event. */
static void
history_print(const json_t *root, const char *what, const char *who)
{
	const json_t *rows = json_object_get(root, "due_rows"), *events = json_object_get(root, "events");
	size_t i, n = json_array_size(events);

	printf("%s %s: %zu due row%s\n", what, who, json_array_size(rows),
	    json_array_size(rows) == 1 ? "" : "s");
	for (i = 0; i < json_array_size(rows); i++)
		history_print_row(json_array_get(rows, i));
	for (i = 0; i < n; i++) {
		json_t *ev = json_deep_copy(json_array_get(events, i));
		char *at = strdup(json_string_value(json_object_get(ev, "at")));
		char *kind = strdup(json_string_value(json_object_get(ev, "kind")));

		if (at == NULL || kind == NULL)
			fatal("history");
		json_object_del(ev, "at");
		json_object_del(ev, "kind");
		history_print_event(at, kind, ev);
		free(at);
		free(kind);
		json_decref(ev);
	}
	printf("%zu event%s\n", n, n == 1 ? "" : "s");
}

int
ctl_cmd_history(struct ctl *ctl, int argc, char **argv)
{
	struct history_opts o = { 0 };
	const char *v[2];
	char ids[4096] = "{", msisdns[4096] = "{";
	size_t li = 1, lm = 1;
	json_t *root, *rows;
	PGresult *res;
	int rc, done, i;

	if ((rc = history_parse(argc, argv, &o, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	v[0] = o.account;
	v[1] = o.msisdn;
	if ((rc = ctl_run(ctl, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0 ||
	    (o.json && (rc = ctl_run(ctl, "SET LOCAL TIME ZONE 'UTC'")) != 0) ||
	    (res = ctl_exec(ctl, history_sql_rows, 2, v, &rc)) == NULL)
		return rc;
	if (PQntuples(res) == 0 && o.account != NULL) {
		fprintf(stderr, "payremindctl history: no due row has account_ref %s\n", o.account);
		PQclear(res);
		return EX_DATAERR;
	}
	if (o.msisdn != NULL)
		lm += (size_t)snprintf(msisdns + lm, sizeof(msisdns) - lm, "%s", o.msisdn);
	rows = json_array();
	for (i = 0; i < PQntuples(res) && li < sizeof(ids) - 24 && lm < sizeof(msisdns) - 24; i++) {
		li += (size_t)snprintf(
		    ids + li, sizeof(ids) - li, "%s%s", li > 1 ? "," : "", PQgetvalue(res, i, 0));
		if (o.account != NULL && strstr(msisdns, PQgetvalue(res, i, 1)) == NULL)
			lm += (size_t)snprintf(msisdns + lm, sizeof(msisdns) - lm, "%s%s", lm > 1 ? "," : "",
			    PQgetvalue(res, i, 1));
		json_array_append_new(rows, json_loads(PQgetvalue(res, i, 2), 0, NULL));
	}
	snprintf(ids + li, sizeof(ids) - li, "}");
	snprintf(msisdns + lm, sizeof(msisdns) - lm, "}");
	PQclear(res);
	root = json_pack("{s:s, s:o, s:[]}", o.account != NULL ? "account_ref" : "msisdn",
	    o.account != NULL ? o.account : o.msisdn, "due_rows", rows, "events");
	if ((rc = history_events(ctl, ids, msisdns, json_object_get(root, "events"))) == 0 &&
	    (rc = ctl_run(ctl, "COMMIT")) == 0) {
		if (json_array_size(rows) == 0 && json_array_size(json_object_get(root, "events")) == 0) {
			fprintf(stderr, "payremindctl history: nothing is recorded about %s\n", o.msisdn);
			rc = EX_DATAERR;
		} else if (o.json)
			ctl_json_print(root);
		else
			history_print(root, o.account != NULL ? "account" : "number",
			    o.account != NULL ? o.account : o.msisdn);
	}
	json_decref(root);
	return rc;
}
