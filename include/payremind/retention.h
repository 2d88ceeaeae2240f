/* Retention (Québec Law 25): personal data older than retention.days is purged in small batches. */
#ifndef PAYREMIND_RETENTION_H
#define PAYREMIND_RETENTION_H

#include "payremind/conf.h"
#include "payremind/db.h"

struct retention;

/* A purger on db; conf gives retention.days (retention_set_conf swaps it on reload). */
struct retention *retention_new(struct db *db, const struct conf *conf);
/* Use conf from the next pass on. */
void retention_set_conf(struct retention *r, const struct conf *conf);
/* Start a pass over every kind of data unless one runs (each statement deletes at most a batch). */
void retention_run(struct retention *r);
/* Shut-down: let the statement in flight finish and start no other. */
void retention_stop(struct retention *r);
/* 1 while a pass runs. */
int retention_busy(const struct retention *r);
/* Free (call when not busy). */
void retention_free(struct retention *r);

#endif
