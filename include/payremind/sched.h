/* The batch cycle: rescue -> claim -> policy -> reminder + token -> render -> paced send -> record. */
#ifndef PAYREMIND_SCHED_H
#define PAYREMIND_SCHED_H

#include "payremind/conf.h"
#include "payremind/db.h"
#include "payremind/loop.h"

struct sched;

/* What one batch did (and, summed, what the daemon did). */
struct sched_stats {
	long sent;      /* the gateway took it */
	long failed;    /* permanent failure, or gave up */
	long retried;   /* transient: queued again for later */
	long unknown;   /* may or may not have been taken: an operator decides */
	long skipped;   /* not now: window, holiday, notice, schedule, caps, gap */
	long cancelled; /* settled, held or opted out */
};

typedef void (*sched_done_cb)(const struct sched_stats *batch, void *arg);

/* A scheduler for instance `owner` (uuid) on loop: the rescue and keyword replies go through db, outcomes
 * through rec, and the claim transaction (claim, creations, rows handed back) through tx: three
 * connections, none waiting for another's work; done_cb runs when a batch ends. */
struct sched *sched_new(struct loop *loop, struct db *db, struct db *rec, struct db *tx,
    const struct conf *conf, const char *owner, sched_done_cb done_cb, void *arg);
/* Use conf from the next request on (a reload); conf must outlive its use. */
void sched_set_conf(struct sched *s, const struct conf *conf);
/* `live` daemons (this one included) share gateway.rate_per_second from now on. */
void sched_set_share(struct sched *s, int live);
/* Start a batch of everything due now, unless one is running. 1 when started. */
int sched_batch(struct sched *s);
/* Keyword replies are waiting (NOTIFY payremind_replies): send them ahead of reminders. */
void sched_replies(struct sched *s);
/* Stop claiming; give back what was claimed and not sent; let in-flight requests finish. */
void sched_stop(struct sched *s);
/* An operator paused (1) or resumed (0) sending: while paused nothing is claimed, ready reminders go
 * back to `queued` untouched, requests in flight finish, keyword replies still go. */
void sched_set_paused(struct sched *s, int paused);
/* on: each claim takes the rows due by its own instant, so that a long batch (an overloaded day) takes
 * a group in as soon as its window opens, in the SPEC §11 order; off (--once): the rows due when the
 * batch started, and the batch ends. */
void sched_set_continuous(struct sched *s, int on);
/* Milliseconds until the earliest closed group (region, time zone) of the last claim opens its window,
 * or -1 when none is known: the next batch need not wait a whole poll interval. */
int64_t sched_next_opening_ms(const struct sched *s);
/* The gateway circuit breaker (0 closed, 1 open, 2 half open), and since when (epoch s, 0: start). */
int sched_circuit(const struct sched *s, double *since);
/* 1 while a batch runs or anything is in flight or unrecorded. */
int sched_busy(const struct sched *s);
/* Totals since start. */
const struct sched_stats *sched_totals(const struct sched *s);
/* Requests in flight. */
int sched_in_flight(const struct sched *s);
/* Free (call when not busy). */
void sched_free(struct sched *s);

#endif
