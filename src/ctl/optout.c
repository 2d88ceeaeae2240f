/* payremindctl optout: opts phone numbers out (cancelling their queued reminders), back in, or lists them. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "ctl.h"

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
optout_add(struct ctl *ctl, const char *msisdn, const char *reason)
{
	const char *v[1] = { msisdn };
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, optout_sql_add, 1, v, &rc)) == NULL)
		return rc;
	if (ctl_int(res, 0, 0) == 1 &&
	    (rc = ctl_record_action(ctl, "opt_out", NULL, msisdn, NULL, NULL, reason)) != 0) {
		PQclear(res);
		return rc;
	}
	if (ctl_int(res, 0, 0) == 1)
		printf("%s opted out", msisdn);
	else
		printf("%s was already opted out (source %s)", msisdn, PQgetvalue(res, 0, 2));
	printf("; %" PRId64 " queued reminder(s) cancelled\n", ctl_int(res, 0, 1));
	PQclear(res);
	return 0;
}

static int
optout_remove(struct ctl *ctl, const char *msisdn, const char *reason)
{
	const char *v[1] = { msisdn };
	PGresult *res;
	int rc = 0;

	if ((res = ctl_exec(ctl, optout_sql_remove, 1, v, &rc)) == NULL)
		return rc;
	if (PQntuples(res) > 0 &&
	    (rc = ctl_record_action(ctl, "opt_in", NULL, msisdn, NULL, PQgetvalue(res, 0, 0), reason)) != 0) {
		PQclear(res);
		return rc;
	}
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

int
ctl_cmd_optout(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *action, *msisdn, *reason = NULL;
	int ch, list, rc;

	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'r')
			reason = optarg;
		else if (ch == 'h')
			return ctl_help("optout");
		else
			return ctl_bad_option("optout", ch, argv);
	}
	if ((rc = ctl_check_reason("optout", reason)) != 0)
		return rc;
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
	if (list && reason != NULL)
		return ctl_usage_error("optout", "--reason goes with add or remove");
	ctl_connect(ctl);
	if (list)
		return optout_list(ctl, msisdn);
	if ((rc = ctl_run(ctl, "BEGIN")) != 0)
		return rc;
	rc =
	    strcmp(action, "add") == 0 ? optout_add(ctl, msisdn, reason) : optout_remove(ctl, msisdn, reason);
	return rc != 0 ? rc : ctl_run(ctl, "COMMIT");
}
