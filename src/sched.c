/* The batch cycle: rescue -> claim -> policy -> reminder + token -> render -> paced send -> record. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "payremind/backoff.h"
#include "payremind/breaker.h"
#include "payremind/gateway.h"
#include "payremind/gsm.h"
#include "payremind/http.h"
#include "payremind/log.h"
#include "payremind/metrics.h"
#include "payremind/policy.h"
#include "payremind/ratelimit.h"
#include "payremind/sched.h"
#include "payremind/store.h"
#include "payremind/template.h"
#include "payremind/token.h"
#include "payremind/tz.h"

#define SCHED_BUSY_RETRY_S 5.0      /* a step another daemon is sending: look again soon */
#define SCHED_REGION_RETRY_S 3600.0 /* unknown region or zone, or no instant allowed: look again hourly */
#define SCHED_CONFIG_PAUSE_MS 60000 /* the gateway refused our credentials: pause sending */
#define SCHED_HOLD_MAX_MS 300000    /* the longest Retry-After that pauses all sending */
#define SCHED_HOLD_KEEP_MS 2000     /* shorter holds keep the ready reminders in memory */
#define SCHED_BREAKER_FAILURES 20   /* consecutive transient failures that open the breaker */
#define SCHED_BREAKER_MIN_MS 1000
#define SCHED_BREAKER_MAX_MS 60000
#define SCHED_FLUSH_MS 20    /* outcomes wait at most this long to be recorded */
#define SCHED_DB_WAIT_MS 200 /* the database is unreachable: look again this often */
#define SCHED_MSISDN_BUCKETS 4096
#define SCHED_REPLY_BATCH 100
#define SCHED_TEXT_MAX 2048
#define SCHED_MAX_GROUPS 512 /* (region, time zone) pairs the claim orders */
#define SCHED_AHEAD_S 10.0   /* paced: claim about this many seconds of sending at a time */

/* Numbers with a reminder decided but not yet recorded: the database cannot see those contacts yet. */
struct sched_pending {
	struct sched_pending *next;
	char msisdn[16];
	int64_t at;
	int refs;
};

/* A (region, time zone) pair of due rows, and what the claim's order needs of it now. */
struct sched_group {
	int id; /* payremind.claim_groups */
	char region[8];
	char zone[64];
	int open;       /* policy_open: 1 open, 0 closed, -1 unknown region or zone */
	int64_t closes; /* when open: the end of its contact window */
	int64_t opens;  /* when closed: when its window opens (0: unknown) */
	int64_t day_start;
};

/* The jobs of one database call, handed to its callback. */
struct sched_call {
	struct sched *s;
	struct job **jobs;
	int n;
};

struct sched {
	struct loop *loop;
	struct db *db;  /* rescue, replies */
	struct db *rec; /* outcomes: a second connection, so PostgreSQL works on both at once */
	struct db *tx;  /* the claim transaction: claim, creations and rows handed back, one COMMIT */
	struct http *http;
	const struct conf *conf;
	const struct gw_dialect *dialect;
	char owner[40];
	sched_done_cb done_cb;
	void *done_arg;

	int active;         /* a batch is running */
	int replies_wanted; /* keyword replies may be waiting in payremind.replies */
	int claiming_replies;
	int exhausted; /* the last claim found fewer rows than asked */
	int claiming;
	int stopping;
	int paused; /* an operator paused sending (payremind.control): keyword replies only */
	double horizon;
	int continuous; /* a daemon, not --once: each claim looks up to its own instant, not the batch's start */
	double avg_segments; /* per SMS sent lately (a moving average): the claim's limit is in segments */
	int ncalls;          /* store calls in flight other than claims (the claims' COMMITs too) */
	int npreparing;      /* reminders being created in claim transactions: sent once committed */
	int nmarking; /* jobs being marked 'sending', about to start (dialects without idempotency key) */

	struct job *ready_head, *ready_tail; /* reminders created, waiting for pace and a slot */
	int nready;
	int nready_code[2]; /* of them, sending from 27022 and from 270282 */
	struct job **done;  /* outcomes waiting to be recorded */
	int ndone, cap_done;

	struct ratelimit rl[2]; /* one bucket per short code: 27022, 270282 */
	int share;              /* live daemons sharing the configured rate */
	struct breaker breaker;
	enum breaker_state circuit; /* the breaker's state as last reported, and since when (epoch s) */
	double circuit_since;
	struct loop_timer *pace;
	struct loop_timer *flush;
	struct sched_pending *pending[SCHED_MSISDN_BUCKETS];

	struct sched_stats batch, total;
	struct sched_stats replies; /* keyword replies, since start */

	struct sched_group groups[SCHED_MAX_GROUPS]; /* as found at the batch's start */
	int ngroups;
	struct store_slice slices[3 * SCHED_MAX_GROUPS]; /* the claim's order, built at each claim */
	int nslices;
};

static void sched_kick(struct sched *s);
static void sched_groups_cb(PGresult *res, void *arg);
static int sched_claim_limit(const struct sched *s);
static void sched_send(struct sched *s, struct job *j);

/* 1 while every connection is up: nothing new starts, and no outcome is written, without them. */
static int
sched_db_up(const struct sched *s)
{
	return db_up(s->db) && db_up(s->rec) && db_up(s->tx);
}

static unsigned
sched_hash(const char *msisdn)
{
	unsigned h = 2166136261u;

	for (; *msisdn; msisdn++)
		h = (h ^ (unsigned char)*msisdn) * 16777619u;
	return h % SCHED_MSISDN_BUCKETS;
}

static struct sched_pending *
sched_pending_find(struct sched *s, const char *msisdn)
{
	struct sched_pending *p;

	for (p = s->pending[sched_hash(msisdn)]; p != NULL; p = p->next)
		if (strcmp(p->msisdn, msisdn) == 0)
			return p;
	return NULL;
}

static void
sched_pending_add(struct sched *s, const char *msisdn, int64_t at)
{
	struct sched_pending *p = sched_pending_find(s, msisdn);
	unsigned h;

	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			fatal("sched_pending_add");
		snprintf(p->msisdn, sizeof(p->msisdn), "%s", msisdn);
		h = sched_hash(msisdn);
		p->next = s->pending[h];
		s->pending[h] = p;
	}
	p->at = at;
	p->refs++;
}

static void
sched_pending_del(struct sched *s, const char *msisdn)
{
	struct sched_pending **pp, *p;

	for (pp = &s->pending[sched_hash(msisdn)]; (p = *pp) != NULL; pp = &p->next) {
		if (strcmp(p->msisdn, msisdn) == 0) {
			if (--p->refs == 0) {
				*pp = p->next;
				free(p);
			}
			return;
		}
	}
}

static struct sched_call *
sched_call_new(struct sched *s, int cap)
{
	struct sched_call *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->jobs = calloc((size_t)(cap > 0 ? cap : 1), sizeof(*c->jobs))) == NULL)
		fatal("sched_call_new");
	c->s = s;
	return c;
}

/* The rendered text holds the payment link: wipe it once it is no longer needed. */
static void
sched_body_free(struct job *j)
{
	if (j->body != NULL) {
		explicit_bzero(j->body, strlen(j->body));
		free(j->body);
		j->body = NULL;
	}
}

static void
sched_job_free(struct job *j)
{
	if (j != NULL) {
		free(j->reply_text);
		sched_body_free(j);
	}
	free(j);
}

static void
sched_call_free(struct sched_call *c, int free_jobs)
{
	int i;

	if (free_jobs)
		for (i = 0; i < c->n; i++)
			sched_job_free(c->jobs[i]);
	free(c->jobs);
	free(c);
}

static void
sched_pace(void *arg)
{
	sched_kick(arg);
}

static void
sched_flush_timer(void *arg)
{
	sched_kick(arg);
}

struct sched *
sched_new(struct loop *loop, struct db *db, struct db *rec, struct db *tx, const struct conf *conf,
    const char *owner, sched_done_cb done_cb, void *arg)
{
	struct sched *s = calloc(1, sizeof(*s));
	int i;

	if (s == NULL)
		fatal("sched_new");
	s->loop = loop;
	s->db = db;
	s->rec = rec;
	s->tx = tx;
	s->done_cb = done_cb;
	s->done_arg = arg;
	snprintf(s->owner, sizeof(s->owner), "%s", owner);
	s->http = http_new(loop, conf->gateway.max_in_flight);
	s->pace = loop_timer_new(loop, sched_pace, s);
	s->flush = loop_timer_new(loop, sched_flush_timer, s);
	s->share = 1;
	s->avg_segments = 1.0;
	for (i = 0; i < 2; i++)
		ratelimit_init(&s->rl[i], conf->gateway.rate_per_second,
		    RATELIMIT_BURST(conf->gateway.rate_per_second), loop_now_ms() * 1000);
	breaker_init(&s->breaker, SCHED_BREAKER_FAILURES, SCHED_BREAKER_MIN_MS, SCHED_BREAKER_MAX_MS);
	sched_set_conf(s, conf);
	return s;
}

/* Each live daemon sends at rate / share, so together they keep to the configured rate. */
static void
sched_apply_rate(struct sched *s)
{
	double rate = s->conf->gateway.rate_per_second / (s->share > 0 ? s->share : 1);
	int i;

	for (i = 0; i < 2; i++) {
		ratelimit_set_rate(&s->rl[i], rate, loop_now_ms() * 1000);
		s->rl[i].burst = RATELIMIT_BURST(rate);
	}
}

void
sched_set_conf(struct sched *s, const struct conf *conf)
{
	s->conf = conf;
	s->dialect = gw_dialect_get(conf->gateway.dialect);
	sched_apply_rate(s);
}

void
sched_set_share(struct sched *s, int live)
{
	if (live < 1)
		live = 1;
	if (live != s->share) {
		log_info("rate: %d live daemons share gateway.rate_per_second %.1f", live,
		    s->conf->gateway.rate_per_second);
		s->share = live;
		sched_apply_rate(s);
	}
}

/* The instant reminder step + 1 becomes due, 0 when there is none (the row is done). */
static double
sched_next_step_at(const struct sched *s, const struct job *j)
{
	int64_t t;

	if (policy_step_at(&s->conf->rules, j->due_date, j->time_zone, j->step + 1, &t) == -1)
		return loop_wall_s() + SCHED_REGION_RETRY_S;
	return (double)t;
}

/* Apply the policy to a claimed row. 1 when it is to be sent; else the job is filled for a release. */
static int
sched_decide(struct sched *s, struct job *j, double now)
{
	const struct policy_rules *rules = &s->conf->rules;
	struct policy_row row = { j->region, j->time_zone, j->due_date, j->notice_sent_on, j->step,
		j->settled, j->held, j->opted_out, j->paid };
	struct policy_decision dec;
	struct sched_pending *p;

	j->due_next_step = j->step;
	if (j->step >= rules->noffsets)
		return 0; /* every step done: park */
	if (strcmp(j->rem_state, "sending") == 0) {
		j->due_next_at = now + SCHED_BUSY_RETRY_S;
		return 0;
	}
	if (j->rem_state[0] != '\0' && strcmp(j->rem_state, "queued") != 0) {
		j->due_next_step = j->step + 1; /* the step is final already: move on */
		j->due_next_at = now;
		return 0;
	}
	if ((p = sched_pending_find(s, j->msisdn)) != NULL && j->hist.ncontacts < POLICY_MAX_HISTORY)
		j->hist.contacts[j->hist.ncontacts++] = p->at;
	if (policy_decide(rules, &row, &j->hist, (int64_t)now, &dec) == -1) {
		log_warnx("due row %lld: unknown time zone %s", (long long)j->due_id, j->time_zone);
		j->due_next_at = now + SCHED_REGION_RETRY_S;
		s->batch.skipped++;
		return 0;
	}
	switch (dec.reason) {
	case POLICY_SEND:
		sched_pending_add(s, j->msisdn, (int64_t)now);
		j->due_next_at = sched_next_step_at(s, j); /* where the creation moves the due row */
		return 1;
	case POLICY_SETTLED:
	case POLICY_PAID:
	case POLICY_HELD:
	case POLICY_OPTED_OUT:
		j->state = "cancelled";
		snprintf(j->result.error, sizeof(j->result.error), "%s", policy_reason_to_text(dec.reason));
		j->due_next_at = 0;
		s->batch.cancelled++;
		metrics_count_skip(dec.reason);
		return 0;
	case POLICY_UNKNOWN_REGION:
		j->due_next_at = now + SCHED_REGION_RETRY_S;
		break;
	case POLICY_WINDOW:
	case POLICY_HOLIDAY:
		/* looked at while its group's window is closed: due from now, so that a row the window
		 * did not reach counts as left over on the next day (SPEC §11), whatever its region; the
		 * closed group's claim takes only rows nobody has looked at, so it is not taken again
		 * before its window opens */
		if (j->slice >= 0 && j->slice < s->nslices && s->slices[j->slice].closed) {
			j->due_next_at = now;
			break;
		}
		/* FALLTHROUGH */
	default:
		/* no instant within the policy's horizon (no written notice sent yet, a region without any
		 * window): look again hourly, so a notice billing records later is seen */
		j->due_next_at = dec.next_at != 0 ? (double)dec.next_at : now + SCHED_REGION_RETRY_S;
		break;
	}
	log_debug("due row %lld step %d: skip (%s)", (long long)j->due_id, j->step,
	    policy_reason_to_text(dec.reason));
	metrics_count_skip(dec.reason);
	s->batch.skipped++;
	return 0;
}

/* The short code a job sends from, as an index of rl[] and nready_code[]. */
static int
sched_code(const struct job *j)
{
	return strcmp(j->short_code, "270282") == 0;
}

static void
sched_ready_push(struct sched *s, struct job *j)
{
	j->next = NULL;
	if (s->ready_tail != NULL)
		s->ready_tail->next = j;
	else
		s->ready_head = j;
	s->ready_tail = j;
	s->nready++;
	s->nready_code[sched_code(j)]++;
}

/* Keyword replies go first: a STOP confirmation must not wait behind a batch of reminders. */
static void
sched_ready_push_front(struct sched *s, struct job *j)
{
	j->next = s->ready_head;
	s->ready_head = j;
	if (s->ready_tail == NULL)
		s->ready_tail = j;
	s->nready++;
	s->nready_code[sched_code(j)]++;
}

/* Move the first ready job sending from code to the head, ahead of those of the other code. */
static void
sched_ready_raise(struct sched *s, int code)
{
	struct job *p, *j;

	for (p = s->ready_head; (j = p->next) != NULL; p = j)
		if (sched_code(j) == code) {
			p->next = j->next;
			if (s->ready_tail == j)
				s->ready_tail = p;
			j->next = s->ready_head;
			s->ready_head = j;
			return;
		}
}

static struct job *
sched_ready_pop(struct sched *s)
{
	struct job *j = s->ready_head;

	if (j != NULL) {
		s->ready_head = j->next;
		if (s->ready_head == NULL)
			s->ready_tail = NULL;
		s->nready--;
		s->nready_code[sched_code(j)]--;
	}
	return j;
}

/* Queue an outcome for the next record statement. */
static void
sched_done_push(struct sched *s, struct job *j)
{
	if (s->ndone == s->cap_done) {
		s->cap_done = s->cap_done ? s->cap_done * 2 : 256;
		if ((s->done = realloc(s->done, (size_t)s->cap_done * sizeof(*s->done))) == NULL)
			fatal("sched_done_push");
	}
	s->done[s->ndone++] = j;
	if (!loop_timer_armed(s->flush))
		loop_timer_set(s->flush, SCHED_FLUSH_MS);
}

/* A reminder created but never handed to the gateway: give it back untouched (attempt not counted),
 * to be tried again from `at` (epoch s). */
static void
sched_unsend(struct sched *s, struct job *j, double at)
{
	j->state = "queued";
	j->attempts_delta = -1;
	j->next_attempt_at = at;
	j->due_next_at = at;
	j->due_next_step = j->step;
	sched_done_push(s, j);
}

/* Render the reminder's text into out. 0, or -1 with err. */
static int
sched_render(const struct sched *s, const struct job *j, char *out, size_t outlen, char *err, size_t errlen)
{
	const struct conf *conf = s->conf;
	char link[512];
	struct template_vars vars = { link, j->amount_cents, j->currency, 0, 0, 0, j->account_ref };

	if (j->ref_too_long) { /* an account number cut short would send people to pay the wrong account */
		snprintf(err, errlen, "account_ref: longer than %zu characters", sizeof(j->account_ref) - 1);
		return -1;
	}
	snprintf(link, sizeof(link), "%s%s", conf->token.base_url, j->token);
	tz_civil_from_days(j->due_date, &vars.due_year, &vars.due_month, &vars.due_day);
	return template_render_sms(conf->templates.fr, conf->templates.en, conf->templates.transliterate,
	    j->lang, &vars, out, outlen, err, errlen);
}

/* The text of a new reminder, rendered once and stored with it; NULL when it cannot be rendered (the
 * send then renders again and records why it failed). */
static char *
sched_render_new(const struct sched *s, const struct job *j)
{
	char text[SCHED_TEXT_MAX], err[256], *body;

	if (sched_render(s, j, text, sizeof(text), err, sizeof(err)) == -1)
		return NULL;
	if ((body = strdup(text)) == NULL)
		fatal("render");
	explicit_bzero(text, sizeof(text));
	return body;
}

/* A new reminder goes out with the text rendered for it; one re-leased for a retry with the text of its
 * first attempt (or, created before texts were stored, rendered again from its stored token). */
static void
sched_prepared_body(struct job *j, const PGresult *res, int i)
{
	if (PQgetvalue(res, i, 7)[0] == 't')
		return;
	sched_body_free(j);
	if (!PQgetisnull(res, i, 6) && (j->body = strdup(PQgetvalue(res, i, 6))) == NULL)
		fatal("prepare");
}

/* A claim transaction is over: what it created (c) goes to the pace once it committed, else it does not
 * exist (the server rolled it back: the rows are due again as they were). */
static void
sched_tx_done(struct sched *s, struct sched_call *c, int committed)
{
	int i;

	s->npreparing -= c->n;
	for (i = 0; i < c->n; i++) {
		if (!committed) {
			sched_pending_del(s, c->jobs[i]->msisdn);
			sched_job_free(c->jobs[i]);
		} else if (s->stopping || s->paused)
			sched_unsend(s, c->jobs[i], loop_wall_s());
		else
			sched_ready_push(s, c->jobs[i]);
	}
	sched_call_free(c, 0);
	sched_kick(s);
}

static void
sched_commit_cb(PGresult *res, void *arg)
{
	struct sched_call *c = arg;
	char err[256];
	int ok = store_committed(res);

	c->s->ncalls--;
	if (!ok && c->n > 0)
		log_warnx("claim: the transaction did not commit (%s): its %d reminders do not exist and are "
		          "not sent; their rows are due again as they were (nothing to do)",
		    db_ok(res) ? "rolled back" : db_error(res, err, sizeof(err)), c->n);
	sched_tx_done(c->s, c, ok);
}

/* COMMIT (or ROLLBACK) the claim transaction that created c; a connection gone has rolled it back
 * already. The next claim may queue behind it. */
static void
sched_tx_end(struct sched *s, struct sched_call *c, int commit)
{
	s->claiming = 0;
	if (store_end(s->tx, commit, sched_commit_cb, c) == -1) {
		sched_tx_done(s, c, 0);
		return;
	}
	s->ncalls++;
}

/* Rows handed back in the claim transaction: a failure makes its COMMIT roll back (said once, by the
 * statement that failed first). */
static void
sched_release_cb(PGresult *res, void *arg)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char err[256];

	(void)arg;
	if (res != NULL && !db_ok(res) && (state == NULL || strcmp(state, "25P02") != 0))
		log_warnx("release: %s", db_error(res, err, sizeof(err)));
}

/* Hand rows back in the claim transaction (the call owns and frees the jobs). */
static void
sched_release(struct sched *s, struct sched_call *c)
{
	if (c->n > 0 && store_release(s->tx, c->jobs, c->n, sched_release_cb, s) == -1)
		log_warnx("release: database unavailable");
	sched_call_free(c, 1);
}

static void
sched_prepare_cb(PGresult *res, void *arg)
{
	struct sched_call *c = arg, *rest, *created;
	struct sched *s = c->s;
	char err[256];
	int i, k;

	rest = sched_call_new(s, c->n);
	created = sched_call_new(s, c->n);
	if (!db_ok(res))
		log_warnx("prepare: %s", db_error(res, err, sizeof(err)));
	for (i = 0; db_ok(res) && i < PQntuples(res); i++) {
		int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);

		for (k = 0; k < c->n && (c->jobs[k]->created || c->jobs[k]->due_id != id); k++)
			;
		if (k == c->n)
			continue;
		snprintf(c->jobs[k]->rem_id, sizeof(c->jobs[k]->rem_id), "%s", PQgetvalue(res, i, 2));
		c->jobs[k]->attempts = atoi(PQgetvalue(res, i, 3));
		snprintf(c->jobs[k]->token, sizeof(c->jobs[k]->token), "%s", PQgetvalue(res, i, 4));
		snprintf(c->jobs[k]->short_code, sizeof(c->jobs[k]->short_code), "%s", PQgetvalue(res, i, 5));
		sched_prepared_body(c->jobs[k], res, i);
		c->jobs[k]->created = 1;
	}
	/* created ones go out in the claim's order (SPEC §11); the others were not created: another daemon
	 * contacted the number within the gap, or holds the step's retry */
	for (k = 0; k < c->n; k++) {
		if (c->jobs[k]->created) {
			created->jobs[created->n++] = c->jobs[k];
			continue;
		}
		sched_pending_del(s, c->jobs[k]->msisdn);
		c->jobs[k]->due_next_at = loop_wall_s() + SCHED_BUSY_RETRY_S;
		c->jobs[k]->due_next_step = c->jobs[k]->step;
		rest->jobs[rest->n++] = c->jobs[k];
	}
	s->npreparing -= rest->n;
	if (db_ok(res))
		sched_release(s, rest);
	else
		sched_call_free(rest, 1);
	sched_call_free(c, 0);
	sched_tx_end(s, created, db_ok(res));
}

static void
sched_claim_cb(PGresult *res, void *arg)
{
	struct sched *s = arg;
	struct sched_call *send, *skip;
	double now = loop_wall_s();
	char err[256];
	int i, n;

	if (!db_ok(res)) {
		log_warnx("claim: %s", db_error(res, err, sizeof(err)));
		s->exhausted = 1;
		sched_tx_end(s, sched_call_new(s, 0), 0);
		return;
	}
	n = PQntuples(res);
	if (n < sched_claim_limit(s))
		s->exhausted = 1;
	send = sched_call_new(s, n);
	skip = sched_call_new(s, n);
	for (i = 0; i < n; i++) {
		struct job *j = malloc(sizeof(*j));

		if (j == NULL)
			fatal("claim");
		if (store_claim_row(res, i, j) == -1)
			log_warnx("claim: malformed history for due row %lld", (long long)j->due_id);
		if (sched_decide(s, j, now)) {
			token_generate(j->token);
			token_uuid7((int64_t)(now * 1000), j->rem_id);
			j->body = sched_render_new(s, j);
			send->jobs[send->n++] = j;
		} else
			skip->jobs[skip->n++] = j;
	}
	sched_release(s, skip);
	if (send->n > 0 &&
	    store_prepare(s->tx, s->owner, s->conf, s->dialect->idempotent, send->jobs, send->n,
	        sched_prepare_cb, send) == 0) {
		s->npreparing += send->n;
		return;
	}
	for (i = 0; i < send->n; i++)
		sched_pending_del(s, send->jobs[i]->msisdn);
	sched_call_free(send, 1);
	sched_tx_end(s, sched_call_new(s, 0), 1);
}

/* Open groups by the end of their window, earliest first; ties in (region, zone) order. */
static int
sched_group_cmp(const void *a, const void *b)
{
	const struct sched_group *x = *(const struct sched_group *const *)a,
	                         *y = *(const struct sched_group *const *)b;
	int c;

	if (x->closes != y->closes)
		return x->closes < y->closes ? -1 : 1;
	return (c = strcmp(x->region, y->region)) != 0 ? c : strcmp(x->zone, y->zone);
}

/* The claim's order at now (SPEC §11), group by group with the earliest-closing window first: the
 * rows left over from an earlier local day, then the current day's (first those nobody has looked at
 * yet, next_at -infinity as billing inserts them, then the others); then the groups the rules cannot
 * place (unknown region or zone), for the policy to say so. A group whose window is closed (or within
 * the guard, or on a holiday) gives only the rows nobody has looked at: they are due from the instant
 * they are looked at (sched_decide), a row of that local day or, the days after, one left over. The
 * number of slices. */
static int
sched_slices(struct sched *s, int64_t now)
{
	struct sched_group *open[SCHED_MAX_GROUPS];
	int i, n = 0, nopen = 0;

	for (i = 0; i < s->ngroups; i++) {
		struct sched_group *g = &s->groups[i];

		g->open = policy_open(&s->conf->rules, g->region, g->zone, now, &g->closes, &g->day_start);
		if (g->open == 1)
			open[nopen++] = g;
		else if (g->open == 0 &&
		    policy_next_open(&s->conf->rules, g->region, g->zone, now, &g->opens) == -1)
			g->opens = 0;
	}
	qsort(open, (size_t)nopen, sizeof(open[0]), sched_group_cmp);
	for (i = 0; i < nopen; i++)
		s->slices[n++] =
		    (struct store_slice){ open[i]->id, STORE_LOOKED_AT, (double)open[i]->day_start, 0 };
	for (i = 0; i < nopen; i++) {
		s->slices[n++] = (struct store_slice){ open[i]->id, -INFINITY, STORE_LOOKED_AT, 0 };
		s->slices[n++] = (struct store_slice){ open[i]->id, (double)open[i]->day_start, INFINITY, 0 };
	}
	for (i = 0; i < s->ngroups; i++)
		if (s->groups[i].open == -1)
			s->slices[n++] = (struct store_slice){ s->groups[i].id, -INFINITY, INFINITY, 0 };
	for (i = 0; i < s->ngroups; i++)
		if (s->groups[i].open == 0)
			s->slices[n++] =
			    (struct store_slice){ s->groups[i].id, -INFINITY, STORE_LOOKED_AT, 1 };
	return n;
}

static void
sched_begin_cb(PGresult *res, void *arg)
{
	struct sched *s = arg;
	const struct conf *conf = s->conf;
	char err[256];

	if (!db_ok(res) ||
	    store_claim(s->tx, sched_claim_limit(s), conf->schedule.lease_s,
	        s->continuous ? loop_wall_s() : s->horizon, s->slices,
	        (s->nslices = sched_slices(s, (int64_t)ceil(loop_wall_s()))), sched_claim_cb, s) == -1) {
		log_warnx("claim: %s", db_ok(res) ? "database unavailable" : db_error(res, err, sizeof(err)));
		s->exhausted = 1;
		s->claiming = 0;
		sched_kick(s);
	}
}

/* One key=value line per delivery attempt; never the text, the token or the full number. */
static void
sched_log_attempt(const struct job *j)
{
	char masked[32], next[32] = "-", what[96];
	time_t t = (time_t)j->next_attempt_at;
	struct tm tm;

	if (j->next_attempt_at > 0 && gmtime_r(&t, &tm) != NULL)
		strftime(next, sizeof(next), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (j->kind == JOB_REPLY)
		snprintf(what, sizeof(what), "reply=%s", j->rem_id);
	else
		snprintf(what, sizeof(what), "reminder=%s due=%lld step=%d", j->rem_id, (long long)j->due_id,
		    j->step);
	log_info("%s to=%s code=%s result=%s state=%s http=%ld attempt=%d next=%s%s%s", what,
	    log_mask_msisdn(j->msisdn, masked, sizeof(masked)), j->short_code,
	    gw_outcome_to_text(j->result.outcome), j->state, j->result.http_status,
	    j->attempts + j->attempts_delta, next, j->result.error[0] ? " error=" : "", j->result.error);
}

/* Turn the classified result into the reminder's next state and the due row's next look. */
static void
sched_outcome(struct sched *s, struct job *j)
{
	const struct conf *conf = s->conf;
	double now = loop_wall_s();
	struct gw_result *r = &j->result;
	int retry = r->outcome == GW_TEMPFAIL || (r->outcome == GW_AMBIGUOUS && s->dialect->idempotent);

	struct sched_stats *st = j->kind == JOB_REMINDER ? &s->batch : &s->replies;

	j->due_next_step = -1; /* a final outcome leaves the due row where the reminder's creation put it */
	if (r->outcome == GW_OK) {
		j->state = "sent";
		st->sent++;
	} else if (r->outcome == GW_CONFIG) {
		sched_unsend(s, j, now + SCHED_CONFIG_PAUSE_MS / 1000);
		breaker_hold(&s->breaker, SCHED_CONFIG_PAUSE_MS, loop_now_ms());
		log_warnx("gateway refuses our configuration (%s): sending paused for %d s; fix the gateway "
		          "settings "
		          "and reload",
		    r->error, SCHED_CONFIG_PAUSE_MS / 1000);
		return;
	} else if (retry && j->attempts < conf->gateway.max_attempts) {
		j->state = "queued";
		j->next_attempt_at = now +
		    (double)backoff_delay_ms(j->attempts, conf->gateway.backoff_base_ms,
		        conf->gateway.backoff_cap_ms, drand48(), r->retry_after_ms) /
		        1000.0;
		j->due_next_at = j->next_attempt_at;
		j->due_next_step = j->step;
		st->retried++;
	} else if (retry) {
		j->state = "failed";
		st->failed++;
	} else if (r->outcome == GW_AMBIGUOUS) {
		j->state = "unknown";
		st->unknown++;
	} else {
		j->state = "failed";
		st->failed++;
	}
	if (r->opt_out && store_opt_out(s->rec, j->msisdn, "gateway", NULL, NULL) == -1)
		log_warnx("opt-out from the gateway not recorded: database unavailable");
	sched_done_push(s, j);
}

/* Feed the breaker: transient and ambiguous answers count as the gateway failing; a Retry-After on a
 * 429/503 pauses all sending for that long. */
static void
sched_breaker_report(struct sched *s, const struct gw_result *r)
{
	int64_t now = loop_now_ms();
	enum breaker_state before = s->breaker.state;

	breaker_result(&s->breaker, r->outcome != GW_TEMPFAIL && r->outcome != GW_AMBIGUOUS, now);
	if (r->outcome == GW_TEMPFAIL && r->retry_after_ms > 0)
		breaker_hold(&s->breaker,
		    r->retry_after_ms > SCHED_HOLD_MAX_MS ? SCHED_HOLD_MAX_MS : r->retry_after_ms, now);
	if (s->breaker.state != before)
		log_notice("gateway circuit breaker %s -> %s (%s)", breaker_state_to_text(before),
		    breaker_state_to_text(s->breaker.state),
		    r->error[0] ? r->error : gw_outcome_to_text(r->outcome));
}

static void
sched_http_cb(const struct http_result *res, void *arg)
{
	struct job *j = arg;
	struct sched *s = j->ctx;
	struct gw_response resp = { res->status, res->body, res->body_len, res->retry_after };

	memset(&j->result, 0, sizeof(j->result));
	if (res->curl_code != CURLE_OK)
		gw_classify_transport(res->curl_code, res->request_sent, &j->result);
	else
		s->dialect->classify(&resp, &j->result);
	if (j->result.retry_after_ms == 0 && res->retry_after != NULL)
		j->result.retry_after_ms = gw_parse_retry_after(res->retry_after, (int64_t)loop_wall_s());
	sched_breaker_report(s, &j->result);
	metrics_count_send(j->result.outcome);
	if (res->curl_code == CURLE_OK)
		metrics_observe_latency(res->seconds);
	sched_outcome(s, j);
	sched_log_attempt(j);
	sched_kick(s);
}

/* 1 when the reminder's recipient has less than window_guard_s left in the contact window (or none):
 * it must not start (SPEC §11); j->window_end is the window's end (0 when closed). */
static int
sched_window_closing(const struct sched *s, struct job *j)
{
	double now = loop_wall_s();

	j->window_end = 0;
	if (policy_window_end(&s->conf->rules, j->region, j->time_zone, (int64_t)now, &j->window_end) == -1) {
		j->window_end = 0;
		return 1;
	}
	return (double)j->window_end - now < s->conf->rules.window_guard_s;
}

/* Hand back a reminder that must not start now (sched_window_closing): untouched, due again when its
 * window has closed, when the policy finds the next one. */
static void
sched_unsend_closing(struct sched *s, struct job *j)
{
	double now = loop_wall_s();

	log_info("reminder=%s: not sent now: its recipient's contact window %s (schedule.window_guard_s %d)",
	    j->rem_id, j->window_end > now ? "closes too soon" : "is closed", s->conf->rules.window_guard_s);
	breaker_cancel(&s->breaker);
	sched_unsend(s, j, j->window_end > now ? (double)j->window_end : now + 1);
}

/* Render, build and hand one reminder to libcurl. */
static void
sched_send(struct sched *s, struct job *j)
{
	char text[SCHED_TEXT_MAX], err[256];
	/* now rounded up: the seconds left in the window are whole seconds, never more than there are */
	struct gw_message m = { j->rem_id, j->short_code, j->msisdn, text, 0, (int64_t)ceil(loop_wall_s()) };
	struct gw_request req = { 0 };

	if (j->kind == JOB_REPLY)
		m.text = j->reply_text;
	else if (j->body != NULL)
		m.text = j->body;
	/* A reminder tells the gateway when its recipient's window closes: a queueing gateway drops it then
	 * rather than deliver it late (SPEC §11). None starts with less than window_guard_s left (time may
	 * have passed since the dispatch looked: marking it 'sending'). A keyword reply answers at any hour. */
	if (j->kind == JOB_REMINDER) {
		if (sched_window_closing(s, j)) {
			sched_unsend_closing(s, j);
			return;
		}
		m.expires_at = j->window_end;
	}
	if ((m.text == text && sched_render(s, j, text, sizeof(text), err, sizeof(err)) == -1) ||
	    gw_build(s->dialect, s->conf, &m, &req, err, sizeof(err)) == -1) {
		log_warnx("%s=%s: not sent: %s", j->kind == JOB_REPLY ? "reply" : "reminder", j->rem_id, err);
		breaker_cancel(&s->breaker);
		memset(&j->result, 0, sizeof(j->result));
		j->result.outcome = GW_PERMFAIL;
		snprintf(j->result.error, sizeof(j->result.error), "%s", err);
		sched_outcome(s, j);
		return;
	}
	explicit_bzero(j->token, sizeof(j->token)); /* it lives on in the database only while needed */
	explicit_bzero(text, sizeof(text));
	sched_body_free(j);
	j->ctx = s;
	j->started_ms = loop_now_ms();
	if (http_submit(s->http, &req, s->conf->gateway.timeout_ms, s->conf->gateway.connect_timeout_ms,
	        sched_http_cb, j) == -1) {
		breaker_cancel(&s->breaker);
		gw_request_free(&req);
		sched_unsend(s, j, loop_wall_s());
	}
}

/* Sending is held for wait_ms (the breaker is open, the gateway said Retry-After, or refused our
 * credentials): rather than sit on leases, give every ready reminder back for after the hold, and claim
 * nothing more in this batch. */
static void
sched_hold(struct sched *s, int64_t wait_ms)
{
	double at = loop_wall_s() + (double)wait_ms / 1000.0;
	struct job *j;
	int n = 0;

	while ((j = sched_ready_pop(s)) != NULL) {
		sched_unsend(s, j, at);
		n++;
	}
	s->exhausted = 1;
	if (n > 0)
		log_notice(
		    "sending held for %lld ms: %d reminders handed back until then", (long long)wait_ms, n);
}

/* Drop a job whose lease passed to another daemon while it waited: that daemon sends it. */
static void
sched_drop(struct sched *s, struct job *j)
{
	log_warnx("%s=%s: not sent: its lease passed to another daemon while it waited",
	    j->kind == JOB_REPLY ? "reply" : "reminder", j->rem_id);
	breaker_cancel(&s->breaker);
	if (j->kind == JOB_REMINDER)
		sched_pending_del(s, j->msisdn);
	sched_job_free(j);
}

static void
sched_mark_cb(PGresult *res, void *arg)
{
	struct sched_call *c = arg;
	struct sched *s = c->s;
	char err[256];
	int i, k;

	s->ncalls--;
	s->nmarking -= c->n;
	if (!db_ok(res)) {
		log_warnx("mark: %s: %d handed back unsent", db_error(res, err, sizeof(err)), c->n);
		for (k = 0; k < c->n; k++)
			sched_unsend(s, c->jobs[k], loop_wall_s());
		c->n = 0;
	}
	for (i = 0; i < (c->n > 0 ? PQntuples(res) : 0); i++) {
		for (k = 0; k < c->n &&
		     (c->jobs[k] == NULL || strcmp(c->jobs[k]->rem_id, PQgetvalue(res, i, 0)) != 0);
		     k++)
			;
		if (k == c->n)
			continue;
		if (s->stopping || (s->paused && c->jobs[k]->kind == JOB_REMINDER))
			sched_unsend(s, c->jobs[k], loop_wall_s());
		else
			sched_send(s, c->jobs[k]);
		c->jobs[k] = NULL;
	}
	for (k = 0; k < c->n; k++)
		if (c->jobs[k] != NULL)
			sched_drop(s, c->jobs[k]);
	sched_call_free(c, 0);
	sched_kick(s);
}

/* Hand a group to the HTTP client. A dialect without idempotency key first marks the group 'sending'
 * (one statement): a reminder becomes `unknown` after a crash only if its request may have left. */
static void
sched_start(struct sched *s, struct sched_call *c)
{
	int i;

	if (s->dialect->idempotent || c->n == 0) {
		for (i = 0; i < c->n; i++)
			sched_send(s, c->jobs[i]);
		sched_call_free(c, 0);
		return;
	}
	if (store_mark(s->rec, s->owner, s->conf->schedule.lease_s, c->jobs, c->n, sched_mark_cb, c) == -1) {
		log_warnx("mark: database unavailable: %d handed back unsent", c->n);
		for (i = 0; i < c->n; i++)
			sched_unsend(s, c->jobs[i], loop_wall_s());
		sched_call_free(c, 0);
		return;
	}
	s->ncalls++;
	s->nmarking += c->n;
}

/* The segments an SMS takes, what the short code's rate counts (SPEC §11): its stored text, else (a
 * reminder whose text is rendered at send) its template at its longest. */
static int
sched_segments(const struct sched *s, const struct job *j)
{
	const char *text = j->kind == JOB_REPLY ? j->reply_text : j->body;
	struct gsm_info info;
	char err[256];

	if (text != NULL && gsm_analyze(text, &info) == 0)
		return info.segments;
	if (conf_template_longest(
	        s->conf, strcmp(j->lang, "en") == 0 ? "en" : "fr", &info, err, sizeof(err)) == 0)
		return info.segments;
	return 1;
}

/* Start as many ready reminders as the breaker, the short code's pace (in segments) and max_in_flight
 * allow. */
static void
sched_dispatch(struct sched *s)
{
	struct sched_call *c;
	struct job *j;
	int64_t now_ms, wait, other;
	int code;

	if (s->nready > 0 && !sched_db_up(s)) {
		/* Nothing new starts while the database is away, and what waits goes back untouched (recorded
		 * once it is back): its lease may run out meanwhile, and a rescued reminder must not go twice. */
		while ((j = sched_ready_pop(s)) != NULL)
			sched_unsend(s, j, loop_wall_s());
		return;
	}
	c = sched_call_new(s, s->conf->gateway.max_in_flight);

	while (
	    s->nready > 0 && http_in_flight(s->http) + s->nmarking + c->n < s->conf->gateway.max_in_flight) {
		if (s->paused && s->ready_head->kind == JOB_REMINDER) { /* made ready as the pause came */
			sched_unsend(s, sched_ready_pop(s), loop_wall_s());
			continue;
		}
		now_ms = loop_now_ms();
		if ((wait = breaker_allow(&s->breaker, now_ms)) != 0) {
			if (wait > SCHED_HOLD_KEEP_MS)
				sched_hold(s, wait);
			else if (wait > 0)
				loop_timer_set(s->pace, wait);
			break; /* -1: the probe's answer kicks us */
		}
		if (s->ready_head->kind == JOB_REMINDER && sched_window_closing(s, s->ready_head)) {
			sched_unsend_closing(
			    s, sched_ready_pop(s)); /* before its tokens: the rate is for what goes */
			continue;
		}
		if (s->ready_head->segments == 0) { /* counted once: the head may wait through many kicks */
			s->ready_head->segments = sched_segments(s, s->ready_head);
			s->avg_segments = 0.99 * s->avg_segments + 0.01 * s->ready_head->segments;
		}
		code = sched_code(s->ready_head);
		if ((wait = ratelimit_take_n(&s->rl[code], s->ready_head->segments, now_ms * 1000)) > 0) {
			/* The other code is another carrier pipe: what goes from it (a retry keeps the sender
			 * of its first attempt, SPEC §3) does not wait behind this code's tokens. */
			if (s->nready_code[!code] > 0) {
				if ((other = ratelimit_take_n(&s->rl[!code], 0, now_ms * 1000)) == 0) {
					sched_ready_raise(s, !code);
					continue;
				}
				wait = other < wait ? other : wait;
			}
			breaker_cancel(&s->breaker);
			loop_timer_set(s->pace, (wait + 999) / 1000);
			break;
		}
		c->jobs[c->n++] = sched_ready_pop(s);
	}
	sched_start(s, c);
}

static int
sched_connection_lost(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return !db_ok(res) &&
	    (state == NULL || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0);
}

static void
sched_record_cb(PGresult *res, void *arg)
{
	struct sched_call *c = arg;
	struct sched *s = c->s;
	char err[256];
	long fenced;
	int i;

	s->ncalls--;
	/* The connection went before the answer, or the server ended the session (class 08, 57P0x): keep
	 * them for when it is back (the update is fenced: writing an outcome twice changes nothing). */
	if (res == NULL || sched_connection_lost(res)) {
		log_warnx("record: database unavailable: %d outcomes kept until it is back", c->n);
		for (i = 0; i < c->n; i++) {
			if (c->jobs[i]->kind == JOB_REMINDER)
				sched_pending_add(s, c->jobs[i]->msisdn, (int64_t)loop_wall_s());
			sched_done_push(s, c->jobs[i]);
		}
		sched_call_free(c, 0);
		sched_kick(s);
		return;
	}
	if (!db_ok(res))
		log_warnx("record: %s: %d outcomes not recorded (their leases expire and they are rescued)",
		    db_error(res, err, sizeof(err)), c->n);
	else if ((fenced = c->n -
	                 strtol(PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : PQcmdTuples(res), NULL, 10)) > 0)
		log_warnx("record: %ld of %d outcomes refused: their lease had passed to another daemon",
		    fenced, c->n);
	sched_call_free(c, 1);
	sched_kick(s);
}

/* One record statement per kind of job: reminders (with their due rows) and keyword replies. */
static void
sched_flush_kind(struct sched *s, enum job_kind kind)
{
	struct sched_call *c = sched_call_new(s, s->ndone);
	int i, rc;

	for (i = 0; i < s->ndone; i++) {
		if (s->done[i]->kind != kind)
			continue;
		if (kind == JOB_REMINDER)
			sched_pending_del(s, s->done[i]->msisdn);
		c->jobs[c->n++] = s->done[i];
	}
	if (c->n == 0) {
		sched_call_free(c, 0);
		return;
	}
	rc = kind == JOB_REMINDER ? store_record(s->rec, s->owner, c->jobs, c->n, sched_record_cb, c)
	                          : store_reply_record(s->rec, s->owner, c->jobs, c->n, sched_record_cb, c);
	if (rc == -1) {
		log_warnx("record: database unavailable: %d outcomes not recorded (rescued when their leases "
		          "expire)",
		    c->n);
		sched_call_free(c, 1);
		return;
	}
	s->ncalls++;
}

static void
sched_flush(struct sched *s)
{
	if (s->ndone == 0)
		return;
	if (!db_up(s->rec)) { /* outcomes wait in memory for the database, never dropped */
		if (!loop_timer_armed(s->flush))
			loop_timer_set(s->flush, SCHED_DB_WAIT_MS);
		return;
	}
	sched_flush_kind(s, JOB_REMINDER);
	sched_flush_kind(s, JOB_REPLY);
	s->ndone = 0;
	loop_timer_set(s->flush, -1);
}

static void
sched_rescue_cb(PGresult *res, void *arg)
{
	struct sched *s = arg;
	char err[256];

	if (!db_ok(res))
		log_warnx("rescue: %s", db_error(res, err, sizeof(err)));
	else if (PQntuples(res) == 1 && atoi(PQgetvalue(res, 0, 0)) > 0)
		log_notice("rescue: %s reminders and replies taken back: their daemon's lease expired",
		    PQgetvalue(res, 0, 0));
	if (store_groups(s->db, SCHED_MAX_GROUPS + 1, sched_groups_cb, s) == -1) {
		s->claiming = 0; /* the groups found last time will do */
		sched_kick(s);
	}
}

/* The (region, time zone) pairs the batch's claims walk. */
static void
sched_groups_cb(PGresult *res, void *arg)
{
	struct sched *s = arg;
	char err[256];
	int i, n;

	if (!db_ok(res))
		log_warnx(
		    "claim groups: %s (the groups found last time will do)", db_error(res, err, sizeof(err)));
	else {
		n = PQntuples(res);
		if (n > SCHED_MAX_GROUPS)
			log_warnx(
			    "claim groups: more than %d (region, time zone) pairs with rows to look at: those "
			    "after %s %s wait until earlier ones have none (check the region and time_zone billing "
			    "writes)",
			    SCHED_MAX_GROUPS, PQgetvalue(res, SCHED_MAX_GROUPS - 1, 1),
			    PQgetvalue(res, SCHED_MAX_GROUPS - 1, 2));
		for (i = s->ngroups = 0; i < n && i < SCHED_MAX_GROUPS; i++) {
			struct sched_group *g = &s->groups[s->ngroups];

			if (strlen(PQgetvalue(res, i, 1)) >= sizeof(g->region) ||
			    strlen(PQgetvalue(res, i, 2)) >= sizeof(g->zone)) {
				log_warnx("claim groups: region %.16s time zone %.64s too long, left out",
				    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
				continue;
			}
			g->id = atoi(PQgetvalue(res, i, 0));
			snprintf(g->region, sizeof(g->region), "%s", PQgetvalue(res, i, 1));
			snprintf(g->zone, sizeof(g->zone), "%s", PQgetvalue(res, i, 2));
			s->ngroups++;
		}
	}
	s->claiming = 0;
	sched_kick(s);
}

/* Rows to claim at a time: a batch, but no more than this daemon's share of the rate (in segments, at the
 * segments per SMS seen lately) sends in SCHED_AHEAD_S, nor in a quarter of a lease: nothing claimed
 * waits in memory until its lease runs out, and a window that opens, or rows left over from an earlier
 * day, wait no longer than that behind what was claimed before (SPEC §11's order). */
static int
sched_claim_limit(const struct sched *s)
{
	const struct conf *conf = s->conf;
	double ahead =
	    conf->schedule.lease_s / 4.0 < SCHED_AHEAD_S ? conf->schedule.lease_s / 4.0 : SCHED_AHEAD_S;
	double paced =
	    conf->gateway.rate_per_second / (s->share > 0 ? s->share : 1) * ahead / s->avg_segments;

	if (s->breaker.state != BREAKER_CLOSED)
		return 1; /* the gateway is failing: a probe needs one reminder, the others stay claimable */
	if (conf->gateway.rate_per_second <= 0 || paced >= conf->schedule.batch_size)
		return conf->schedule.batch_size;
	return paced < 1 ? 1 : (int)paced;
}

/* Open the claim transaction: BEGIN, then the claim (sched_begin_cb). */
static void
sched_claim(struct sched *s)
{
	if (store_begin(s->tx, sched_begin_cb, s) == -1) {
		log_warnx("claim: database unavailable");
		s->exhausted = 1;
		return;
	}
	s->claiming = 1;
}

static int
sched_quiet(const struct sched *s)
{
	return !s->claiming && !s->claiming_replies && s->ncalls == 0 && s->nready == 0 && s->ndone == 0 &&
	    s->nmarking == 0 && http_in_flight(s->http) == 0;
}

static void
sched_end_batch(struct sched *s)
{
	const struct sched_stats *b = &s->batch;

	s->active = 0;
	s->total.sent += b->sent;
	s->total.failed += b->failed;
	s->total.retried += b->retried;
	s->total.unknown += b->unknown;
	s->total.skipped += b->skipped;
	s->total.cancelled += b->cancelled;
	log_info("batch: sent=%ld failed=%ld retried=%ld unknown=%ld rows_skipped=%ld rows_closed=%ld",
	    b->sent, b->failed, b->retried, b->unknown, b->skipped, b->cancelled);
	if (s->done_cb != NULL)
		s->done_cb(b, s->done_arg);
}

static void
sched_reply_claim_cb(PGresult *res, void *arg)
{
	struct sched *s = arg;
	char err[256];
	int i, n;

	s->claiming_replies = 0;
	if (!db_ok(res)) {
		log_warnx("replies: %s", db_error(res, err, sizeof(err)));
		sched_kick(s);
		return;
	}
	n = PQntuples(res);
	s->replies_wanted = n == SCHED_REPLY_BATCH; /* a full batch: more may wait */
	for (i = n - 1; i >= 0; i--) {
		struct job *j = calloc(1, sizeof(*j));

		if (j == NULL || (j->reply_text = strdup(PQgetvalue(res, i, 3))) == NULL)
			fatal("replies");
		j->kind = JOB_REPLY;
		snprintf(j->rem_id, sizeof(j->rem_id), "%s", PQgetvalue(res, i, 0));
		snprintf(j->msisdn, sizeof(j->msisdn), "%s", PQgetvalue(res, i, 1));
		snprintf(j->short_code, sizeof(j->short_code), "%s", PQgetvalue(res, i, 2));
		j->attempts = atoi(PQgetvalue(res, i, 4));
		if (s->stopping)
			sched_unsend(s, j, loop_wall_s());
		else
			sched_ready_push_front(s, j);
	}
	sched_kick(s);
}

static void
sched_claim_replies(struct sched *s)
{
	s->replies_wanted = 0;
	if (store_reply_claim(s->db, s->owner, SCHED_REPLY_BATCH, s->conf->schedule.lease_s,
	        s->dialect->idempotent, sched_reply_claim_cb, s) == 0)
		s->claiming_replies = 1;
}

void
sched_replies(struct sched *s)
{
	s->replies_wanted = 1;
	sched_kick(s);
}

/* 1 while sending is held for long: claiming now would only hand the rows back. */
static int
sched_held(const struct sched *s)
{
	return s->breaker.state == BREAKER_OPEN && s->breaker.until_ms - loop_now_ms() > SCHED_HOLD_KEEP_MS;
}

/* Publish the breaker's state when it changed (metrics, /healthz, the heartbeat). */
static void
sched_note_circuit(struct sched *s)
{
	if (s->breaker.state == s->circuit)
		return;
	s->circuit = s->breaker.state;
	s->circuit_since = loop_wall_s();
	metrics_set_circuit((int)s->circuit, s->circuit_since);
}

/* The scheduler's one step: claim when the pipeline runs low, send, record, and notice the end. */
static void
sched_kick(struct sched *s)
{
	int limit = sched_claim_limit(s);
	/* unpaced, a second batch is on its way while the first goes out */
	int low = limit < s->conf->schedule.batch_size ? limit : 2 * limit;

	if (low < s->conf->gateway.max_in_flight)
		low = s->conf->gateway.max_in_flight;
	if (s->breaker.state != BREAKER_CLOSED)
		low = limit; /* one row at a time for the probe: the rest stays for the other daemons */

	if (s->active && !s->exhausted && sched_held(s))
		s->exhausted = 1; /* nothing more this batch; the next one looks again */
	if (s->replies_wanted && !s->claiming_replies && !s->stopping && !sched_held(s))
		sched_claim_replies(s);
	if (s->active && !s->exhausted && !s->claiming && !s->stopping && !s->paused && sched_db_up(s) &&
	    s->nready + s->npreparing < low)
		sched_claim(s);
	if (!s->stopping)
		sched_dispatch(s);
	if (s->ndone >= s->conf->schedule.batch_size || (s->ndone > 0 && http_in_flight(s->http) == 0) ||
	    (s->ndone > 0 && !loop_timer_armed(s->flush)))
		sched_flush(s);
	if (s->active && (s->exhausted || s->stopping || s->paused) && sched_quiet(s))
		sched_end_batch(s);
	else if (s->active && !sched_db_up(s) && !loop_timer_armed(s->pace))
		loop_timer_set(s->pace, SCHED_DB_WAIT_MS); /* look again once the database is back */
	sched_note_circuit(s);
}

int
sched_batch(struct sched *s)
{
	if (s->active || s->stopping)
		return 0;
	memset(&s->batch, 0, sizeof(s->batch));
	s->active = 1;
	s->exhausted = 0;
	s->horizon = loop_wall_s();
	s->replies_wanted = 1;
	if (store_rescue(s->db, s->dialect->idempotent, s->conf->schedule.lease_s, sched_rescue_cb, s) == 0)
		s->claiming = 1; /* the claim waits for the rescue */
	sched_kick(s);
	return 1;
}

void
sched_set_paused(struct sched *s, int paused)
{
	struct job *j, *keep = NULL, **tail = &keep;
	int n = 0;

	if (paused == s->paused)
		return;
	s->paused = paused;
	if (!paused) {
		log_notice("sending resumed");
		return;
	}
	/* Reminders waiting for the pace or a slot go back untouched; keyword replies stay and go. */
	while ((j = sched_ready_pop(s)) != NULL) {
		if (j->kind == JOB_REMINDER) {
			sched_unsend(s, j, loop_wall_s());
			n++;
		} else {
			*tail = j;
			tail = &j->next;
		}
	}
	*tail = NULL;
	while ((j = keep) != NULL) {
		keep = j->next;
		sched_ready_push(s, j);
	}
	log_notice("sending paused: %d ready reminders handed back, %d requests in flight finish", n,
	    http_in_flight(s->http));
	sched_kick(s);
}

void
sched_set_continuous(struct sched *s, int on)
{
	s->continuous = on;
}

int64_t
sched_next_opening_ms(const struct sched *s)
{
	double now = loop_wall_s();
	int64_t best = -1, ms;
	int i;

	for (i = 0; i < s->ngroups; i++) {
		if (s->groups[i].open != 0 || s->groups[i].opens <= 0)
			continue;
		ms = (int64_t)((s->groups[i].opens - now) * 1000);
		if (best < 0 || ms < best)
			best = ms < 0 ? 0 : ms;
	}
	return best;
}

int
sched_circuit(const struct sched *s, double *since)
{
	*since = s->circuit_since;
	return (int)s->circuit;
}

void
sched_stop(struct sched *s)
{
	struct job *j;

	s->stopping = 1;
	loop_timer_set(s->pace, -1);
	while ((j = sched_ready_pop(s)) != NULL)
		sched_unsend(s, j, loop_wall_s());
	sched_kick(s);
}

int
sched_busy(const struct sched *s)
{
	return s->active || !sched_quiet(s);
}

const struct sched_stats *
sched_totals(const struct sched *s)
{
	return &s->total;
}

int
sched_in_flight(const struct sched *s)
{
	return http_in_flight(s->http);
}

void
sched_free(struct sched *s)
{
	struct sched_pending *p;
	struct job *j;
	int i;

	if (s == NULL)
		return;
	while ((j = sched_ready_pop(s)) != NULL)
		sched_job_free(j);
	for (i = 0; i < s->ndone; i++)
		sched_job_free(s->done[i]);
	for (i = 0; i < SCHED_MSISDN_BUCKETS; i++)
		while ((p = s->pending[i]) != NULL) {
			s->pending[i] = p->next;
			free(p);
		}
	free(s->done);
	http_free(s->http);
	free(s);
}
