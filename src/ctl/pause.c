/* payremindctl pause / resume: stop or restart all sending, in the database every daemon reads each second. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "ctl.h"

/* Pause unless already paused; either way answer who paused, since when, why, and whether this did. */
static const char pause_sql[] =
    "WITH p AS (UPDATE payremind.control SET paused_at = now(), paused_by = $1, pause_reason = $2"
    "            WHERE paused_at IS NULL RETURNING paused_at, paused_by, pause_reason)"
    " SELECT true, " CTL_TS(
        "paused_at") ", paused_by, pause_reason FROM p"
                     " UNION ALL SELECT false, " CTL_TS(
                         "paused_at") ", paused_by, pause_reason FROM payremind.control WHERE NOT EXISTS (SELECT 1 FROM p)";

static const char resume_sql[] =
    "WITH old AS (SELECT paused_at, paused_by, pause_reason FROM payremind.control FOR UPDATE),"
    " r AS (UPDATE payremind.control SET paused_at = NULL, paused_by = NULL, pause_reason = NULL"
    "        WHERE paused_at IS NOT NULL RETURNING 1)"
    " SELECT paused_at IS NOT NULL, " CTL_TS(
        "paused_at") ", paused_by, pause_reason,"
                     "  floor(extract(epoch FROM now() - paused_at))::bigint FROM old";

/* Options of pause (--reason) and resume (--reason): 0, or the exit code; *done after --help. */
static int
pause_parse(const char *cmd, int argc, char **argv, const char **reason, int *done)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*done = 0;
	ctl_getopt_reset();
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'r')
			*reason = optarg;
		else if (ch == 'h') {
			*done = 1;
			return ctl_help(cmd);
		} else
			return ctl_bad_option(cmd, ch, argv);
	}
	if (optind < argc)
		return ctl_usage_error(cmd, "unexpected argument %s", argv[optind]);
	return ctl_check_reason(cmd, *reason);
}

/* The daemons read the pause when they run: say so when none does now. 0, or the exit code. */
static int
pause_no_daemon(struct ctl *ctl)
{
	int rc = 0, live = ctl_live_daemons(ctl, &rc);

	if (live == 0)
		printf(
		    "(no payremindd is running now: each obeys this as it starts, payremindd --once too)\n");
	return live < 0 ? rc : 0;
}

int
ctl_cmd_pause(struct ctl *ctl, int argc, char **argv)
{
	const char *reason = NULL, *v[2];
	PGresult *res;
	int rc, done;

	if ((rc = pause_parse("pause", argc, argv, &reason, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	v[0] = ctl_actor();
	v[1] = reason;
	if ((rc = ctl_run(ctl, "BEGIN")) != 0 || (res = ctl_exec(ctl, pause_sql, 2, v, &rc)) == NULL)
		return rc;
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		if ((rc = ctl_record_action(ctl, "pause", NULL, NULL, NULL, NULL, reason)) == 0 &&
		    (rc = ctl_run(ctl, "COMMIT")) == 0)
			printf(
			    "sending paused since %s by %s%s%s: every daemon stops within 2 s (requests in "
			    "flight finish; keyword replies still go). payremindctl resume restarts it.\n",
			    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), reason != NULL ? ": " : "",
			    reason != NULL ? reason : "");
	} else if ((rc = ctl_run(ctl, "COMMIT")) == 0) {
		printf("sending was already paused since %s by %s%s%s: nothing changed\n",
		    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetisnull(res, 0, 3) ? "" : ": ",
		    PQgetisnull(res, 0, 3) ? "" : PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	return rc != 0 ? rc : pause_no_daemon(ctl);
}

int
ctl_cmd_resume(struct ctl *ctl, int argc, char **argv)
{
	const char *reason = NULL;
	char detail[256];
	PGresult *res;
	int rc, done;

	if ((rc = pause_parse("resume", argc, argv, &reason, &done)) != 0 || done)
		return rc;
	ctl_connect(ctl);
	if ((rc = ctl_run(ctl, "BEGIN")) != 0 || (res = ctl_exec(ctl, resume_sql, 0, NULL, &rc)) == NULL)
		return rc;
	if (PQgetvalue(res, 0, 0)[0] == 't') {
		snprintf(detail, sizeof(detail), "paused since %s by %s", PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2));
		if ((rc = ctl_record_action(ctl, "resume", NULL, NULL, NULL, detail, reason)) == 0 &&
		    (rc = ctl_run(ctl, "COMMIT")) == 0)
			printf("sending resumed (it was paused since %s by %s, %s s): every daemon starts a "
			       "batch within 2 s\n",
			    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4));
	} else if ((rc = ctl_run(ctl, "COMMIT")) == 0) {
		printf("sending was not paused: nothing changed\n");
	}
	PQclear(res);
	return rc != 0 ? rc : pause_no_daemon(ctl);
}
