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
	    "       payremindctl [-c FILE] optout add|remove|list [MSISDN] [--reason TEXT]\n"
	    "       payremindctl [-c FILE] pause [--reason TEXT] | resume [--reason TEXT]\n"
	    "       payremindctl [-c FILE] history (--account REF | --msisdn NUMBER) [--json]\n"
	    "       payremindctl [-c FILE] reminders [--state STATE[,STATE]] [--since DATE] [--limit N] [--json]\n"
	    "       payremindctl [-c FILE] resolve REMINDER_ID --as sent|failed|retry [--reason TEXT]\n"
	    "       payremindctl [-c FILE] inbound [--since DATE] [--json]\n"
	    "       payremindctl [-c FILE] report [--since DATE] [--until DATE] [--by step|language|region|day]\n"
	    "                                      [--json | --html FILE]\n"
	    "       payremindctl [-c FILE] plan [--at TIMESTAMP] [--json]\n"
	    "       payremindctl [-h|--help] [-V|--version]\n");
}

static const struct ctl_command ctl_commands[] = {
	{ "migrate", "migrate",
	    "Apply the SQL migrations not yet recorded in payremind.schema_migrations (idempotent).\n",
	    ctl_cmd_migrate },
	{ "batch", "batch [--account REF] [--timeout S] [--dry-run [--at TIMESTAMP] [--json]]",
	    "Ask the running payremindd to run a batch now, wait for it and print its figures: sent, failed,\n"
	    "retried and unknown count reminders; rows_skipped counts due rows a rule put off, rows_closed\n"
	    "due rows found settled, paid, held or opted out. Exit 69 at once when no daemon is live\n"
	    "(payremindd --once runs a batch in-process).\n"
	    "  --account REF     look at this account's due rows now, whatever their next look was; print\n"
	    "                    what became of them (exit 65 when no due row has this account_ref)\n"
	    "  --timeout S       seconds to wait for a daemon to pick the request, then for it to finish\n"
	    "                    (default 30; at most 86400); exit 69 when none does\n"
	    "  --dry-run         send and create nothing: decide every open due row as the daemon would\n"
	    "                    (computed here, no daemon needed); while sending is paused the rows that\n"
	    "                    would go are skipped with reason paused\n"
	    "  --at TIMESTAMP    with --dry-run: decide as of this instant, ISO 8601 with an offset\n"
	    "                    (2026-11-30T09:00:00-05:00; default now)\n"
	    "  --json            with --dry-run: one JSON object per open due row: account_ref,\n"
	    "                    due_account_id, step, decision (send|skip), reason (null when sent),\n"
	    "                    next_at (the first instant it may go, UTC; null when sent or never)\n",
	    ctl_cmd_batch },
	{ "status", "status [--json]",
	    "Whether sending is paused (who, why, since when), reminders by state, the oldest queued one,\n"
	    "unknown reminders needing a decision, opt-outs, live daemons (with their gateway circuit\n"
	    "breaker) and the last batch.\n"
	    "  --json            the same as one JSON object\n",
	    ctl_cmd_status },
	{ "optout", "optout add|remove|list [MSISDN] [--reason TEXT]",
	    "  add MSISDN        opt the number out (source operator) and cancel its queued reminders\n"
	    "  remove MSISDN     opt it back in: its due rows get reminders again\n"
	    "  list [MSISDN]     the opt-outs (or that number's)\n"
	    "  --reason TEXT     with add or remove: why, recorded with your user name (history shows it)\n"
	    "MSISDN: " CTL_MSISDN_FORMAT "\n",
	    ctl_cmd_optout },
	{ "pause", "pause [--reason TEXT]",
	    "Stop all sending of reminders: every daemon obeys within 2 s (requests in flight finish,\n"
	    "nothing new starts; keyword replies such as STOP confirmations still go). Stored in the\n"
	    "database with your user name; status, /healthz and /metrics show it until resume.\n"
	    "  --reason TEXT     why (one line), shown by status and /healthz\n",
	    ctl_cmd_pause },
	{ "resume", "resume [--reason TEXT]",
	    "Restart sending after pause: every daemon starts a batch within 2 s.\n"
	    "  --reason TEXT     why (one line), recorded with your user name\n",
	    ctl_cmd_resume },
	{ "history", "history (--account REF | --msisdn NUMBER) [--json]",
	    "Everything about one account or one phone number, in time order: its due rows, reminders and\n"
	    "each attempt with its outcome, delivery reports, texts from the phone and our replies,\n"
	    "opt-outs and opt-ins, the link opened, checkout, payments, operators' actions.\n"
	    "  --account REF     the due rows of this account_ref and every number they use (65: none)\n"
	    "  --msisdn NUMBER   the due rows and texts of this number, " CTL_MSISDN_FORMAT "\n"
	    "  --json            {\"account_ref\"|\"msisdn\", \"due_rows\": [...], \"events\": [{\"at\", \"kind\",\n"
	    "                    ...}]}, kind one of due_row, reminder, attempt, dlr, inbound, reply,\n"
	    "                    opt_out, opt_in, link_opened, checkout, payment, operator\n",
	    ctl_cmd_history },
	{ "reminders", "reminders [--state STATE[,STATE]] [--since DATE] [--limit N] [--json]",
	    "Reminders, newest first, with their last error: e.g. --state failed,unknown for those that\n"
	    "need a look.\n"
	    "  --state STATES    only these states, separated by commas: queued, sending, sent, delivered,\n"
	    "                    failed, expired, cancelled, unknown (default: all)\n"
	    "  --since DATE      created on or after DATE (YYYY-MM-DD, local midnight of the database's\n"
	    "                    time zone, or ISO 8601 with an offset)\n"
	    "  --limit N         at most N (default 50)\n"
	    "  --json            an array of {id, account_ref, step, state, attempts, last_error,\n"
	    "                    created_at, sent_at, short_code}\n",
	    ctl_cmd_reminders },
	{ "resolve", "resolve REMINDER_ID --as sent|failed|retry [--reason TEXT]",
	    "Decide an unknown reminder (one that may or may not have reached the phone): exit 65 for a\n"
	    "reminder that is not unknown. Recorded with your user name and the reason.\n"
	    "  --as sent         it reached the phone (e.g. the gateway's records show it)\n"
	    "  --as failed       it did not, and is not to be sent again\n"
	    "  --as retry        it did not: send it again with the next batch, with a new payment link\n"
	    "                    and the text of today's templates\n"
	    "  --reason TEXT     why (one line)\n",
	    ctl_cmd_resolve },
	{ "inbound", "inbound [--since DATE] [--json]",
	    "Texts from phones that were not keywords (questions, promises, disputes), newest first, with\n"
	    "the accounts of each number, for someone to read and act on. A dispute stops contact: billing\n"
	    "sets contact_hold on the account's due rows.\n"
	    "  --since DATE      received on or after DATE (YYYY-MM-DD or ISO 8601 with an offset;\n"
	    "                    default 30 days ago)\n"
	    "  --json            an array of {received_at, msisdn, short_code, text, gateway,\n"
	    "                    account_refs, opted_out}\n",
	    ctl_cmd_inbound },
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
	{ "plan", "plan [--at TIMESTAMP] [--json]",
	    "The rest of the day at the configured rate (gateway.rate_per_second, segments per second), in\n"
	    "the daemon's order (rows left over from an earlier day first, then the window that closes\n"
	    "first): per (region, time zone), the reminders that may go in the current or next contact\n"
	    "window, their segments, when that window closes (local and UTC), the predicted first and last\n"
	    "send, and how many would slip to the window after. Says when sending is paused or a daemon's\n"
	    "gateway breaker is open. Computed here from the database and the config; changes nothing.\n"
	    "  --at TIMESTAMP    as of this instant, ISO 8601 with an offset (default now)\n"
	    "  --json            an array of {region, time_zone, reminders, segments, window_closes,\n"
	    "                    first_send, last_send, slipped} (instants in UTC, null when none); the\n"
	    "                    notes go to standard error\n",
	    ctl_cmd_plan },
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
