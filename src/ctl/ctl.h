/* payremindctl's shared declarations: the context, the command table's entry, the common helpers. */
#ifndef PAYREMIND_CTL_H
#define PAYREMIND_CTL_H

#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "payremind/log.h"
#include "payremind/policy.h"

#define CTL_POLL_MS 200          /* batch: how often to look at the request */
#define CTL_TIMEOUT_DEFAULT 30.0 /* batch --timeout */
#define CTL_TIMEOUT_MAX 86400.0  /* a day: anything longer is a typo */
#define CTL_LIVE_S "20"          /* a daemon is live with a heartbeat younger than this (seconds) */
#define CTL_UNKNOWN_SHOWN 10     /* status: unknown reminders listed */
#define CTL_REASON_MAX 500       /* --reason: bytes */
#define CTL_MSISDN_RE "^\\+1[2-9][0-9]{2}[2-9][0-9]{6}$"
#define CTL_MSISDN_FORMAT "+1NPANXXXXXX, e.g. +15145550123"
/* ISO 8601 with an explicit offset; PostgreSQL then checks the fields themselves. */
#define CTL_AT_RE                                                                   \
	"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?" \
	"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
#define CTL_XSTR(x) #x
#define CTL_STR(x) CTL_XSTR(x)
/* A timestamp as ISO 8601 with the session's offset (UTC for --json). */
#define CTL_TS(x) "to_char(" x ", 'YYYY-MM-DD\"T\"HH24:MI:SSTZH:TZM')"

#define CTL_NSTATES 8
extern const char *const ctl_states[CTL_NSTATES];

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

const struct ctl_command *ctl_find(const char *name);

/* One open due row with the step the scheduler would consider next. Strings point into the result. */
struct dry_row {
	int64_t due_id;
	const char *account_ref, *msisdn, *region, *time_zone, *rem_state, *lang, *currency;
	int64_t amount_cents;
	double next_look; /* the due row's next_at (epoch s; -inf: never looked at, +inf: none) */
	int32_t due_date, notice_sent_on;
	int step, settled, held, opted_out, paid, shown;
	int paused;             /* sending is paused: what would go is skipped (reason paused) */
	double next_attempt_at; /* of the step's queued reminder, 0 when none */
	struct policy_history hist;
	/* the decision */
	enum policy_reason reason;
	int64_t next_at;  /* first instant it may go, 0 when none (final skips, or none in 400 days) */
	const char *note; /* why next_at is not a time, for the table */
};

/* batch.c, shared with plan.c */
int ctl_paused(struct ctl *ctl, char *note, size_t len, int *rc);
int ctl_instant(struct ctl *ctl, const char *cmd, const char *at, double *epoch, char *text, size_t len);
int dry_load(struct ctl *ctl, double at, const char *account, int paused, struct dry_row **rows, int *n,
    PGresult **res);
void ctl_local_time(const char *zone, int64_t t, char *buf, size_t len);

/* common.c */
int ctl_usage_error(const char *cmd, const char *fmt, ...) PR_PRINTF(2, 3);
int ctl_help(const char *cmd);
int ctl_bad_option(const char *cmd, int ch, char **argv);
void ctl_getopt_reset(void);
void ctl_connect(struct ctl *ctl);
int ctl_db_failed(const struct ctl *ctl, const PGresult *res);
PGresult *ctl_exec(struct ctl *ctl, const char *sql, int n, const char *const *params, int *rc);
int ctl_run(struct ctl *ctl, const char *sql);
int ctl_matches(const char *re, const char *s);
int64_t ctl_int(const PGresult *res, int row, int col);
void ctl_json_print(json_t *root);
json_t *ctl_json_text(const PGresult *res, int row, int col);
const char *ctl_actor(void);
int ctl_check_reason(const char *cmd, const char *reason);
int ctl_check_since(const char *cmd, const char *since);
int ctl_since_epoch(struct ctl *ctl, const char *since, char *out, size_t len);
int ctl_record_action(struct ctl *ctl, const char *action, const char *reminder_id, const char *msisdn,
    const char *account_ref, const char *detail, const char *reason);
int ctl_account_known(struct ctl *ctl, const char *account_ref, int *rc);
int ctl_live_daemons(struct ctl *ctl, int *rc);

/* The sub-commands (argv[0] is the sub-command's name): 0, or the exit code. */
int ctl_cmd_migrate(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_batch(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_status(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_optout(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_report(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_pause(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_resume(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_history(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_reminders(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_resolve(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_inbound(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_plan(struct ctl *ctl, int argc, char **argv);

#endif
