/* Every SQL statement of the daemon: claim due rows, create reminders and tokens, release, record
 * outcomes, rescue expired leases. Batched: one round trip per batch, fenced on id + attempt + owner. */
#ifndef PAYREMIND_STORE_H
#define PAYREMIND_STORE_H

#include <stdint.h>

#include "payremind/db.h"
#include "payremind/gateway.h"
#include "payremind/policy.h"
#include "payremind/token.h"

enum job_kind { JOB_REMINDER, JOB_REPLY };

/* One claimed due row on its way to becoming one SMS, or one keyword reply. */
struct job {
	struct job *next;
	enum job_kind kind;
	char *reply_text; /* JOB_REPLY: the text to send (a reply has no template or token) */
	/* the due row, as claimed */
	int64_t due_id;
	int step;
	char msisdn[16];
	char lang[4];
	char region[8];
	char time_zone[64];
	char currency[4];
	char account_ref[256]; /* "" with ref_too_long set when billing's is longer: never sent cut short */
	int ref_too_long;
	int32_t due_date;
	int32_t notice_sent_on;
	int settled, held, opted_out, paid;
	int64_t amount_cents;
	char rem_state[12]; /* state of an existing reminder for this step, "" when none */
	struct policy_history hist;
	/* the reminder, once created or re-leased */
	char rem_id[40];
	int attempts;
	char token[TOKEN_LEN + 1];
	char short_code[8];
	char *body; /* JOB_REMINDER: the text, rendered once at creation (NULL: render at send time) */
	/* the outcome, for store_record */
	struct gw_result result;
	const char *state;      /* new reminder state */
	double next_attempt_at; /* epoch s, 0 = none */
	double due_next_at;     /* epoch s for the due row's next look, 0 = park (NULL) */
	int due_next_step;
	int segments;       /* what the short code's rate counts for it; 0 until counted */
	char tid[32];       /* the claimed due row's ctid, for its update in the same transaction */
	int slice;          /* the claim's slice it came in (store_claim's sl[slice]) */
	int created;        /* the creation answered for it (sched_prepare_cb) */
	int64_t window_end; /* its recipient's contact window's end, as last looked at (sched) */
	int attempts_delta; /* -1 when the attempt did not count (never sent) */
	int64_t started_ms;
	void *ctx; /* the scheduler sending it */
};

/* Register the statements on db (before db_connect). */
void store_register(struct db *db);
/* The claim transaction: store_begin, store_claim, store_prepare and store_release on one connection,
 * then store_end. Nothing it created may be sent before store_committed says its COMMIT succeeded. */
int store_begin(struct db *db, db_cb cb, void *arg) __attribute__((warn_unused_result));
/* COMMIT (commit) or ROLLBACK the claim transaction. */
int store_end(struct db *db, int commit, db_cb cb, void *arg) __attribute__((warn_unused_result));
/* 1 when res answers a COMMIT that committed (an aborted transaction answers COMMIT with ROLLBACK). */
int store_committed(const PGresult *res);
/* A due row's next_at (epoch s) at or after this (year -1199) is an instant payremind set; below it
 * there is only -infinity, a row nobody has looked at yet (as billing inserts it). */
#define STORE_LOOKED_AT -1e11

/* The rows of one claim group (a (region, time zone) pair, payremind.claim_groups) whose next look lies
 * in [lo, hi) (epoch s, infinities allowed): a part of the claim's order. */
struct store_slice {
	int group;
	double lo, hi;
	int closed; /* the group's window is closed: its rows are only looked at (not for the store) */
};

/* Lock up to limit rows due at or before horizon (epoch s), in the claim transaction, taking the n
 * slices in order; a daemon that hangs holding them loses them after lease_s seconds idle. Result rows
 * come in slice order. */
int store_claim(struct db *db, int limit, int lease_s, double horizon, const struct store_slice *sl, int n,
    db_cb cb, void *arg) __attribute__((warn_unused_result));
/* The claim groups with due rows that have a next look, at most max: rows of (id, region, time_zone). */
int store_groups(struct db *db, int max, db_cb cb, void *arg) __attribute__((warn_unused_result));
/* Parse claim result row i into job. 0, or -1 when a column is malformed. */
int store_claim_row(const PGresult *res, int i, struct job *job) __attribute__((warn_unused_result));
/* Create (or re-lease, for a queued retry) the reminder and its token for each job, in one statement,
 * from conf's short code with its lease, token lifetime and gap (a new reminder takes its number's row of
 * the contact ledger: a number another daemon contacted within schedule.min_gap_hours is left out).
 * A job whose claim found a reminder for its step (job->rem_state) re-leases it: no lookup here, since
 * the claim's row lock keeps anyone else from creating one meanwhile.
 * A new reminder gets the id job->rem_id (token_uuid7) and the text job->body; a re-leased one keeps its
 * own id, token and text. It is 'sending' at once when handed (an idempotent dialect), else 'queued'
 * under the lease until store_mark. Each created reminder's due row moves on to step + 1, due at
 * job->due_next_at (0 = park).
 * The result rows: due_account_id, step, id, attempts, link_token, short_code, body (NULL for a new
 * reminder, and for one created before texts were stored), inserted. */
int store_prepare(struct db *db, const char *owner, const struct conf *conf, int handed,
    struct job *const *jobs, int n, db_cb cb, void *arg) __attribute__((warn_unused_result));
/* Mark reminders and replies 'sending' just before their requests start (fenced on id + attempts +
 * owner, lease renewed for lease_s). The result rows: the ids marked. */
int store_mark(struct db *db, const char *owner, int lease_s, struct job *const *jobs, int n, db_cb cb,
    void *arg) __attribute__((warn_unused_result));
/* Give claimed rows back, in the claim transaction: next_at = job->due_next_at (0 = park), next_step = job->due_next_step; cancel
 * a queued reminder of the step when job->state is "cancelled" (last_error = job->result.error). */
int store_release(struct db *db, struct job *const *jobs, int n, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Record outcomes: each reminder (fenced on id + attempts + owner) and, when job->due_next_step >= 0 (a
 * retry, or a reminder handed back), its due row, which the reminder's creation had moved on. */
int store_record(struct db *db, const char *owner, struct job *const *jobs, int n, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Reminders and replies whose lease expired: left `queued` (never handed to the HTTP client), back to
 * queued untouched; left `sending`, back to queued with the same key when the dialect is idempotent
 * (due again after grace_s: its daemon may come back with the answer), else `unknown`. One statement,
 * under pg_try_advisory_xact_lock; the result row: how many. */
int store_rescue(struct db *db, int idempotent, int grace_s, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Record an opt-out reported by the gateway (Twilio 21610). */
int store_opt_out(struct db *db, const char *msisdn, const char *source, db_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* Register or refresh this daemon in payremind.instances with its status line, its circuit breaker
 * ("closed", "open", "half_open", since epoch s or 0), its short code and that code's rate (segments
 * per second, 0 unpaced). The result row: the live daemons sharing that code's rate (itself included;
 * not those whose breaker is open), then with count the queued, sending and unknown reminders (else
 * NULLs). */
int store_heartbeat(struct db *db, const char *owner, const char *hostname, int pid, const char *status,
    int count, const char *circuit, double circuit_since, const char *short_code, double rate, db_cb cb,
    void *arg) __attribute__((warn_unused_result));
/* Whether sending is paused (payremind.control); result row: paused (t/f), since (epoch s), by, reason. */
int store_control(struct db *db, db_cb cb, void *arg) __attribute__((warn_unused_result));
/* Mark this daemon stopped (synchronously, once the loop has ended). */
void store_instance_stop(struct db *db, const char *owner);
/* Take every open operator batch request; result rows: id. */
int store_batch_pick(struct db *db, const char *owner, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Answer requests ids[0..n) with a batch's figures (sent, failed, retried, unknown, rows_skipped, rows_closed)
 * and record them as this daemon's last batch. */
int store_batch_done(struct db *db, const char *owner, const int64_t *ids, int n, const long figures[6],
    db_cb cb, void *arg) __attribute__((warn_unused_result));

/* Lease up to limit queued keyword replies that are due ('sending' at once when handed, else 'queued'
 * until store_mark); result rows: id, msisdn, short_code, text, attempts. */
int store_reply_claim(struct db *db, const char *owner, int limit, int lease_s, int handed, db_cb cb,
    void *arg) __attribute__((warn_unused_result));
/* Record replies' outcomes (fenced on id + attempts + owner). */
int store_reply_record(struct db *db, const char *owner, struct job *const *jobs, int n, db_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* inbound texts, tokens, reminders of settled rows, replies, DLRs, contacts, payments, attempts, opt-out
 * events, operator actions */
#define STORE_PURGE_STEPS 10

/* Delete up to limit rows of retention step `step` older than `days`; the result row holds the count. */
int store_purge(struct db *db, int step, int days, int limit, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* "inbound", "tokens", "reminders", "replies", "dlrs", "contacts", "payments", "attempts", ... */
const char *store_purge_name(int step);

#endif
