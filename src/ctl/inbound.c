/* payremindctl inbound: what phones wrote that was not a keyword, newest first, for someone to read and act on. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "ctl.h"

#define INBOUND_DEFAULT_DAYS "30"
#define INBOUND_MAX 1000

/* Texts since $1 (default 30 days), with the accounts of the number and whether it is opted out. */
static const char inbound_sql[] =
    "WITH s AS (SELECT coalesce(to_timestamp($1::float8), now() - interval '" INBOUND_DEFAULT_DAYS
    " days') AS since),"
    " i AS (SELECT m.id, m.received_at, m.msisdn, m.short_code, m.text, m.gateway"
    "        FROM payremind.inbound_messages m, s"
    "       WHERE m.action = 'none' AND m.received_at >= s.since ORDER BY m.received_at DESC, m.id"
    "       LIMIT " CTL_STR(
        INBOUND_MAX) "),"
                     " a AS (SELECT msisdn, array_agg(DISTINCT account_ref ORDER BY account_ref) AS refs"
                     "        FROM payremind.due_accounts WHERE msisdn IN (SELECT msisdn FROM i) GROUP BY msisdn)"
                     " SELECT " CTL_TS(
                         "i.received_at") ", i.msisdn, i.short_code, i.text, i.gateway,"
                                          "  array_to_json(coalesce(a.refs, '{}'))::text,"
                                          "  EXISTS (SELECT 1 FROM payremind.opt_outs o WHERE o.msisdn = i.msisdn),"
                                          "  (SELECT count(*) FROM payremind.inbound_messages m, s WHERE m.action = 'none' AND m.received_at < s.since)"
                                          " FROM i LEFT JOIN a ON a.msisdn = i.msisdn ORDER BY i.received_at DESC, i.id";

/* A phone's text for a terminal: control characters (escape sequences) shown as \n, \t or \xNN. */
static void
inbound_print_text(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void
inbound_print_json(const PGresult *res)
{
	json_t *a = json_array();
	int i;

	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(a,
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "received_at", PQgetvalue(res, i, 0),
		        "msisdn", PQgetvalue(res, i, 1), "short_code", PQgetvalue(res, i, 2), "text",
		        PQgetvalue(res, i, 3), "gateway", PQgetvalue(res, i, 4), "account_refs",
		        json_loads(PQgetvalue(res, i, 5), JSON_DECODE_ANY, NULL), "opted_out",
		        PQgetvalue(res, i, 6)[0] == 't'));
	ctl_json_print(a);
	json_decref(a);
}

static void
inbound_print(const PGresult *res, const char *since)
{
	int i, n = PQntuples(res);
	long long older = n > 0 ? ctl_int(res, 0, 7) : 0;

	for (i = 0; i < n; i++) {
		json_t *refs = json_loads(PQgetvalue(res, i, 5), JSON_DECODE_ANY, NULL);
		size_t k;

		printf("%s  %s -> %s  account%s:", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2), json_array_size(refs) == 1 ? "" : "s");
		for (k = 0; k < json_array_size(refs); k++)
			printf(" %s", json_string_value(json_array_get(refs, k)));
		if (json_array_size(refs) == 0)
			printf(" none");
		printf("%s\n  ", PQgetvalue(res, i, 6)[0] == 't' ? "  (opted out)" : "");
		inbound_print_text(PQgetvalue(res, i, 3));
		printf("\n");
		json_decref(refs);
	}
	printf("%d text%s from phones that %s not a keyword, since %s%s", n, n == 1 ? "" : "s",
	    n == 1 ? "was" : "were", since != NULL ? since : "30 days ago",
	    n == INBOUND_MAX ? " (the newest only)" : "");
	if (older > 0)
		printf("; %lld older (--since DATE shows them)", older);
	printf(
	    ".\nA dispute, a lawyer or a request for written contact only: billing sets contact_hold on the "
	    "account's due rows (docs/billing.md).\n");
}

int
ctl_cmd_inbound(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *v[1] = { NULL }, *since = NULL;
	char epoch[64];
	int ch, json = 0, rc = 0;
	PGresult *res;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'S')
			since = optarg;
		else if (ch == 'j')
			json = 1;
		else if (ch == 'h')
			return ctl_help("inbound");
		else
			return ctl_bad_option("inbound", ch, argv);
	}
	if (optind < argc)
		return ctl_usage_error("inbound", "unexpected argument %s", argv[optind]);
	if ((rc = ctl_check_since("inbound", since)) != 0)
		return rc;
	ctl_connect(ctl);
	if (since != NULL && (rc = ctl_since_epoch(ctl, since, epoch, sizeof(epoch))) != 0)
		return rc;
	v[0] = since != NULL ? epoch : NULL;
	if (json && (rc = ctl_run(ctl, "SET TIME ZONE 'UTC'")) != 0)
		return rc;
	if ((res = ctl_exec(ctl, inbound_sql, 1, v, &rc)) == NULL)
		return rc;
	if (json)
		inbound_print_json(res);
	else
		inbound_print(res, since);
	PQclear(res);
	return 0;
}
