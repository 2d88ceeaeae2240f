/* The daemon's PostgreSQL connection: prepared statements sent without blocking the loop, answered
 * in order through callbacks; reconnects with backoff when the connection breaks. */
#ifndef PAYREMIND_DB_H
#define PAYREMIND_DB_H

#include <stddef.h>
#include <libpq-fe.h>

#include "payremind/loop.h"

struct db;

/* Called once per query with its result (NULL when the connection failed before an answer). The
 * result belongs to db and is cleared after the callback returns. */
typedef void (*db_cb)(PGresult *res, void *arg);

/* A connection object for conninfo on loop (not connected yet). pooled (database.pooling = "transaction",
 * behind PgBouncer in transaction mode): no named prepared statements (each statement's text every time)
 * and no session settings. Not pooled, a prepared statement that already exists or has gone (the server
 * connection is shared behind a transaction pooler) exits 78 naming database.pooling. */
struct db *db_new(struct loop *loop, const char *conninfo, int pooled);
/* Register a statement, prepared on every (re)connect. Before db_connect only. */
void db_statement(struct db *db, const char *name, const char *sql);
/* Called with the channel of each NOTIFY received (LISTEN with db_listen). */
typedef void (*db_notify_cb)(const char *channel, void *arg);

/* LISTEN on channel after every (re)connect, and call cb for its notifications. Before db_connect only. */
void db_listen(struct db *db, const char *channel, db_notify_cb cb, void *arg);
/* Check at every connect, before preparing, that the database has every compiled-in migration. */
void db_require_schema(struct db *db);
/* 1 when the last db_connect failed because the schema is missing or behind (run payremindctl migrate). */
int db_schema_behind(const struct db *db);
/* A libpq notice receiver: the server's warnings as one log line each, its notices at debug. */
void db_log_notice(void *arg, const PGresult *res);
/* Connect and prepare every statement (blocking: start-up and reconnects only). 0 or -1 with err. */
int db_connect(struct db *db, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Queue a prepared statement with text parameters (copied). 0, or -1 when the connection is down. */
int db_query(struct db *db, const char *name, int nparams, const char *const *values, db_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Queries queued or running. */
int db_pending(const struct db *db);
/* 1 while the connection is up. */
int db_up(const struct db *db);
/* Run a query synchronously, outside the loop (start-up and shut-down). The caller PQclears. */
PGresult *db_exec(struct db *db, const char *name, int nparams, const char *const *values);
/* Statements sent since start (round trips). */
long db_round_trips(const struct db *db);
/* Close and free. Pending callbacks are called with NULL. */
void db_free(struct db *db);
/* 1 when res is a successful command or query result. */
int db_ok(const PGresult *res);
/* PostgreSQL's error for res on one line ("connection lost" when res is NULL). */
const char *db_error(const PGresult *res, char *buf, size_t len);

#endif
