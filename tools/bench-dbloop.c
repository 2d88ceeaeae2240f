/* bench-dbloop: the database ceiling for bench/: the daemon's own claim transaction (BEGIN, claim, prepare,
 * COMMIT) and record statements, no HTTP. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <uuid/uuid.h>

#include "payremind/conf.h"
#include "payremind/db.h"
#include "payremind/log.h"
#include "payremind/loop.h"
#include "payremind/store.h"
#include "payremind/token.h"

/* One prepare (and then record) call: its jobs sorted by due_id, to match the result rows. */
struct dbl_call {
	struct dbl *d;
	struct job **jobs;
	int n;
};

struct dbl {
	struct loop *loop;
	struct db *db;
	struct db *rec; /* outcomes on a second connection, as the daemon does */
	struct conf *conf;
	char owner[40];
	int batch;
	double horizon;
	int exhausted; /* the last claim returned fewer rows than asked */
	int ncalls;    /* prepare and record calls in flight */
	long claimed, recorded, gw_seq;
	int failed;
};

static void dbl_claim(struct dbl *d);

/* A reminder's text as the daemon stores it: two GSM-7 segments with the link. */
static char dbl_body[] = "ARO: un paiement est du sur votre dossier. Payez en ligne: "
                         "https://pay.aro.ca/p/AAAAAAAAAAAAAAAAAAAAAA ou au 1 877 322-1414, du lundi au "
                         "vendredi, de 8 h a 20 h (heure de l'Est), ou par votre institution financiere "
                         "(no de compte: A-100001). Repondez ARRET pour ne plus recevoir de SMS.";

static void
dbl_call_free(struct dbl_call *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		free(c->jobs[i]);
	free(c->jobs);
	free(c);
}

/* Stop the loop once the rows are exhausted and every call has answered. */
static void
dbl_check_end(struct dbl *d)
{
	if ((d->exhausted || d->failed) && d->ncalls == 0)
		loop_break(d->loop);
}

static void
dbl_fail(struct dbl *d, const char *what, const PGresult *res)
{
	char err[256];

	log_warnx("%s: %s", what, db_error(res, err, sizeof(err)));
	d->failed = 1;
}

/* What the daemon computes for a reminder it creates: the next step's local midnight (0 parks the row
 * after the last step). */
static double
dbl_next_step_at(const struct dbl *d, const struct job *j)
{
	int64_t t;

	if (policy_step_at(&d->conf->rules, j->due_date, j->time_zone, j->step + 1, &t) == -1)
		return loop_wall_s() + 3600;
	return (double)t;
}

/* A fake "sent" outcome, as sched_outcome fills it for a 2xx from the gateway. */
static void
dbl_fake_sent(struct dbl *d, struct job *j)
{
	memset(&j->result, 0, sizeof(j->result));
	j->result.outcome = GW_OK;
	j->result.http_status = 202;
	snprintf(j->result.message_id, sizeof(j->result.message_id), "dbl-%ld", ++d->gw_seq);
	j->state = "sent";
	j->next_attempt_at = 0;
	j->due_next_step = -1; /* a final outcome leaves the due row where the creation put it */
	j->attempts_delta = 0;
}

static void
dbl_record_cb(PGresult *res, void *arg)
{
	struct dbl_call *c = arg;
	struct dbl *d = c->d;

	if (!db_ok(res))
		dbl_fail(d, "record", res);
	else
		d->recorded += strtol(PQgetvalue(res, 0, 0), NULL, 10);
	d->ncalls--;
	dbl_call_free(c);
	dbl_check_end(d);
}

static int
dbl_cmp_job(const void *a, const void *b)
{
	const struct job *x = *(struct job *const *)a, *y = *(struct job *const *)b;

	return (x->due_id > y->due_id) - (x->due_id < y->due_id);
}

static struct job *
dbl_find(struct dbl_call *c, int64_t due_id)
{
	struct job key = { .due_id = due_id }, *kp = &key, **hit;

	hit = bsearch(&kp, c->jobs, (size_t)c->n, sizeof(*c->jobs), dbl_cmp_job);
	return hit != NULL ? *hit : NULL;
}

/* Reminders created: fake their outcomes; the COMMIT and the next claim are queued behind. */
static void
dbl_prepare_cb(PGresult *res, void *arg)
{
	struct dbl_call *c = arg;
	struct dbl *d = c->d;
	struct job *j;
	int i;

	if (!db_ok(res)) {
		dbl_fail(d, "prepare", res);
		return;
	}
	for (i = 0; i < PQntuples(res); i++) {
		if ((j = dbl_find(c, strtoll(PQgetvalue(res, i, 0), NULL, 10))) == NULL)
			continue;
		snprintf(j->rem_id, sizeof(j->rem_id), "%s", PQgetvalue(res, i, 2));
		j->attempts = atoi(PQgetvalue(res, i, 3));
		snprintf(j->short_code, sizeof(j->short_code), "%s", PQgetvalue(res, i, 5));
		dbl_fake_sent(d, j);
	}
	if (PQntuples(res) != c->n)
		log_warnx("prepare: %d reminders for %d claimed rows", PQntuples(res), c->n);
}

/* Committed: record the outcomes on the second connection. */
static void
dbl_commit_cb(PGresult *res, void *arg)
{
	struct dbl_call *c = arg;
	struct dbl *d = c->d;

	d->ncalls--;
	if (!store_committed(res) || d->failed) {
		dbl_fail(d, "commit", res);
		dbl_call_free(c);
		dbl_check_end(d);
		return;
	}
	if (store_record(d->rec, d->owner, c->jobs, c->n, dbl_record_cb, c) == -1) {
		dbl_fail(d, "record", NULL);
		dbl_call_free(c);
		dbl_check_end(d);
		return;
	}
	d->ncalls++;
}

/* Claimed rows: give each a token and create the reminders; claim the next batch right behind. */
static void
dbl_claim_cb(PGresult *res, void *arg)
{
	struct dbl *d = arg;
	struct dbl_call *c;
	int i, n;

	if (!db_ok(res)) {
		dbl_fail(d, "claim", res);
		dbl_check_end(d);
		return;
	}
	n = PQntuples(res);
	d->claimed += n;
	if (n < d->batch)
		d->exhausted = 1;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->jobs = calloc((size_t)n + 1, sizeof(*c->jobs))) == NULL)
		fatal("claim");
	c->d = d;
	for (i = 0; i < n; i++) {
		if ((c->jobs[i] = malloc(sizeof(struct job))) == NULL)
			fatal("claim");
		c->n++;
		if (store_claim_row(res, i, c->jobs[i]) == -1)
			log_warnx("claim: malformed row %d", i);
		token_generate(c->jobs[i]->token);
		token_uuid7((int64_t)(loop_wall_s() * 1000), c->jobs[i]->rem_id);
		c->jobs[i]->due_next_at = dbl_next_step_at(d, c->jobs[i]);
		c->jobs[i]->body = dbl_body; /* stored like the daemon's rendered text (never freed) */
	}
	qsort(c->jobs, (size_t)c->n, sizeof(*c->jobs), dbl_cmp_job);
	if (n == 0 || store_prepare(d->db, d->owner, d->conf, 1, c->jobs, c->n, dbl_prepare_cb, c) == -1 ||
	    store_end(d->db, 1, dbl_commit_cb, c) == -1) {
		if (n > 0)
			dbl_fail(d, "prepare", NULL);
		if (n == 0 && store_end(d->db, 1, NULL, NULL) == -1)
			dbl_fail(d, "commit", NULL);
		dbl_call_free(c);
		dbl_check_end(d);
		return;
	}
	d->ncalls++;
	if (!d->exhausted)
		dbl_claim(d);
}

/* bench/run's rows: QC and ON, all in America/Toronto, all-day windows: claim groups 1 and 2 (the
 * daemon orders its slices by window end: equal here, so group order). */
static const struct store_slice dbl_slices[] = {
	{ 1, -INFINITY, INFINITY, 0 },
	{ 2, -INFINITY, INFINITY, 0 },
};

static void
dbl_claim(struct dbl *d)
{
	if (store_begin(d->db, NULL, NULL) == -1 ||
	    store_claim(d->db, d->batch, d->conf->schedule.lease_s, d->horizon, dbl_slices,
	        (int)(sizeof(dbl_slices) / sizeof(dbl_slices[0])), dbl_claim_cb, d) == -1) {
		dbl_fail(d, "claim", NULL);
		dbl_check_end(d);
	}
}

static void
dbl_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: bench-dbloop -c FILE [-b BATCH]\n"
	    "  claims every due row of the database of FILE (payremindd's config) BATCH\n"
	    "  (schedule.batch_size) at a time, creates the reminders and records each as sent,\n"
	    "  with payremindd's own statements and no HTTP; prints reminders/s\n");
}

static void
dbl_parse(int argc, char **argv, struct dbl *d)
{
	const char *path = NULL;
	int ch;

	while ((ch = getopt(argc, argv, "c:b:h")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'b':
			d->batch = atoi(optarg);
			break;
		case 'h':
			dbl_usage(stdout);
			exit(0);
		default:
			dbl_usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc || path == NULL || d->batch < 0) {
		dbl_usage(stderr);
		exit(EX_USAGE);
	}
	d->conf = conf_load_or_exit(path, 0);
	if (d->batch == 0)
		d->batch = d->conf->schedule.batch_size;
}

int
main(int argc, char **argv)
{
	struct dbl d = { 0 };
	char err[512];
	double t0, secs;
	uuid_t u;

	log_init("bench-dbloop", 0);
	dbl_parse(argc, argv, &d);
	uuid_generate_random(u);
	uuid_unparse_lower(u, d.owner);
	if ((d.loop = loop_new()) == NULL)
		fatal("event loop");
	d.db = db_new(d.loop, d.conf->db_conninfo, d.conf->db_pooled);
	d.rec = db_new(d.loop, d.conf->db_conninfo, d.conf->db_pooled);
	store_register(d.db);
	store_register(d.rec);
	if (db_connect(d.db, err, sizeof(err)) == -1 || db_connect(d.rec, err, sizeof(err)) == -1)
		fatalx("database unavailable: %s", err);
	t0 = loop_mono_s();
	d.horizon = loop_wall_s();
	dbl_claim(&d);
	if (loop_run(d.loop) == -1)
		fatal("event loop");
	secs = loop_mono_s() - t0;
	printf("claimed=%ld recorded=%ld batch=%d seconds=%.3f reminders_per_s=%.0f\n", d.claimed, d.recorded,
	    d.batch, secs, (double)d.recorded / secs);
	db_free(d.rec);
	db_free(d.db);
	loop_free(d.loop);
	conf_free(d.conf);
	return d.failed || d.recorded != d.claimed ? 1 : 0;
}
