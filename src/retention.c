/* Retention: one pass deletes, batch by batch, each kind of personal data older than retention.days. */
#include <stdlib.h>
#include <string.h>

#include "payremind/log.h"
#include "payremind/retention.h"
#include "payremind/store.h"

#define RETENTION_BATCH 1000 /* rows per statement: short transactions, short locks */

struct retention {
	struct db *db;
	const struct conf *conf;
	int running;
	int stopping; /* shut-down: finish the statement in flight, start no other */
	int step;     /* the kind of data being purged, 0 .. STORE_PURGE_STEPS - 1 */
	long purged[STORE_PURGE_STEPS];
	int statements;
};

static void retention_next(struct retention *r);

struct retention *
retention_new(struct db *db, const struct conf *conf)
{
	struct retention *r = calloc(1, sizeof(*r));

	if (r == NULL)
		fatal("retention_new");
	r->db = db;
	r->conf = conf;
	return r;
}

void
retention_set_conf(struct retention *r, const struct conf *conf)
{
	r->conf = conf;
}

/* A pass is over: say what went, once. */
static void
retention_done(struct retention *r)
{
	long total = 0;
	int i;

	r->running = 0;
	for (i = 0; i < STORE_PURGE_STEPS; i++)
		total += r->purged[i];
	if (total > 0) {
		char what[512];
		size_t len = 0;

		for (i = 0; i < STORE_PURGE_STEPS && len < sizeof(what); i++)
			len += (size_t)snprintf(
			    what + len, sizeof(what) - len, " %s=%ld", store_purge_name(i), r->purged[i]);
		log_info("retention: purged data older than %d days:%s in %d statements",
		    r->conf->retention.days, what, r->statements);
	}
}

static void
retention_cb(PGresult *res, void *arg)
{
	struct retention *r = arg;
	char err[256];
	long n;

	if (!db_ok(res)) {
		log_warnx("retention: %s: %s (tried again at the next pass)", store_purge_name(r->step),
		    db_error(res, err, sizeof(err)));
		retention_done(r);
		return;
	}
	n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	r->purged[r->step] += n;
	r->statements++;
	if (n < RETENTION_BATCH)
		r->step++; /* this kind is done (or another daemon holds the lock) */
	retention_next(r);
}

static void
retention_next(struct retention *r)
{
	if (r->step == STORE_PURGE_STEPS || r->stopping) {
		retention_done(r);
		return;
	}
	if (store_purge(r->db, r->step, r->conf->retention.days, RETENTION_BATCH, retention_cb, r) == -1) {
		log_warnx("retention: database unavailable (tried again at the next pass)");
		retention_done(r);
	}
}

void
retention_stop(struct retention *r)
{
	r->stopping = 1;
}

void
retention_run(struct retention *r)
{
	if (r->running || r->stopping)
		return;
	r->running = 1;
	r->step = 0;
	r->statements = 0;
	memset(r->purged, 0, sizeof(r->purged));
	retention_next(r);
}

int
retention_busy(const struct retention *r)
{
	return r->running;
}

void
retention_free(struct retention *r)
{
	free(r);
}
