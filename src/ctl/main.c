/* payremindctl: the operators' tool: global options, then one sub-command from the table below. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/log.h"

#include "ctl.h"

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

static const struct ctl_command ctl_commands[] = {
	{ "migrate", "migrate",
	    "Apply the SQL migrations not yet recorded in payremind.schema_migrations (idempotent).\n",
	    ctl_cmd_migrate },
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
	    ctl_cmd_batch },
	{ "status", "status [--json]",
	    "Reminders by state, the oldest queued one, unknown reminders needing a decision, opt-outs,\n"
	    "live daemons and the last batch.\n"
	    "  --json            the same as one JSON object\n",
	    ctl_cmd_status },
	{ "optout", "optout add|remove|list [MSISDN]",
	    "  add MSISDN        opt the number out (source operator) and cancel its queued reminders\n"
	    "  remove MSISDN     opt it back in: its due rows get reminders again\n"
	    "  list [MSISDN]     the opt-outs (or that number's)\n"
	    "MSISDN: " CTL_MSISDN_FORMAT "\n",
	    ctl_cmd_optout },
	{ "report",
	    "report [--since DATE] [--until DATE] [--by step|language|region|day] [--json | --html FILE]",
	    "The funnel from SMS to payment of the reminders created in the period: sent, delivered, failed,\n"
	    "unknown, opened (the link), checkout (the button), paid, opted out; each reminder once per stage.\n"
	    "  --since DATE      first local day (YYYY-MM-DD; default 29 days before --until)\n"
	    "  --until DATE      last local day, included (default today)\n"
	    "  --by KEY          group by step, language, region or day (default day)\n"
	    "  --json            one JSON object per group\n"
	    "  --html FILE       write one self-contained page: the funnel, the groups, a per-day chart\n",
	    ctl_cmd_report },
	{ NULL, NULL, NULL, NULL },
};

const struct ctl_command *
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
