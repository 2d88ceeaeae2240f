/* The daemon's PostgreSQL connection: one query at a time, sent and read without blocking the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "payremind/db.h"
#include "payremind/log.h"
#include "payremind/migrate.h"

#define DB_MAX_STATEMENTS 32
#define DB_MAX_CHANNELS 4
#define DB_MAX_PARAMS 16
#define DB_RETRY_MIN_MS 500
#define DB_RETRY_MAX_MS 30000

struct db_query {
	struct db_query *next;
	const char *name;
	const char *sql;
	int nparams;
	char *values[DB_MAX_PARAMS];
	db_cb cb;
	void *arg;
};

struct db {
	struct loop *loop;
	char *conninfo;
	int prepared; /* named prepared statements, else the text of each every time */
	int pooled;   /* database.pooling = "transaction": no prepared statements, no session settings */
	PGconn *conn;
	struct {
		const char *name;
		const char *sql;
	} stmts[DB_MAX_STATEMENTS];
	int nstmts;
	struct {
		const char *channel;
		db_notify_cb cb;
		void *arg;
	} chans[DB_MAX_CHANNELS];
	int nchans;
	long round_trips;
	struct db_query *head, *tail; /* head is running when `running` */
	int running;
	int npending;
	PGresult *result; /* the last result of the running query */
	struct loop_timer *retry;
	int retry_ms;
	int check_schema;  /* check the migrations before preparing (db_require_schema) */
	int schema_behind; /* the last connect found the schema missing or behind */
};

static void db_start_next(struct db *db);

static void db_io(int fd, unsigned events, void *arg);

struct db *
db_new(struct loop *loop, const char *conninfo, int pooled)
{
	struct db *db = calloc(1, sizeof(*db));

	if (db == NULL || (db->conninfo = strdup(conninfo)) == NULL)
		fatal("db_new");
	db->loop = loop;
	db->pooled = pooled;
	db->prepared = !pooled;
	db->retry_ms = DB_RETRY_MIN_MS;
	return db;
}

void
db_statement(struct db *db, const char *name, const char *sql)
{
	if (db->nstmts == DB_MAX_STATEMENTS)
		fatalx("db_statement: too many statements");
	db->stmts[db->nstmts].name = name;
	db->stmts[db->nstmts].sql = sql;
	db->nstmts++;
}

void
db_require_schema(struct db *db)
{
	db->check_schema = 1;
}

int
db_schema_behind(const struct db *db)
{
	return db->schema_behind == 1;
}

void
db_listen(struct db *db, const char *channel, db_notify_cb cb, void *arg)
{
	if (db->nchans == DB_MAX_CHANNELS)
		fatalx("db_listen: too many channels");
	db->chans[db->nchans].channel = channel;
	db->chans[db->nchans].cb = cb;
	db->chans[db->nchans].arg = arg;
	db->nchans++;
}

int
db_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return res != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

const char *
db_error(const PGresult *res, char *buf, size_t len)
{
	snprintf(buf, len, "%s", res == NULL ? "connection lost" : PQresultErrorMessage(res));
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

void
db_log_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char line[512];

	(void)arg;
	snprintf(line, sizeof(line), "%s", msg != NULL ? msg : PQresultErrorMessage(res));
	line[strcspn(line, "\n")] = '\0';
	if (sev != NULL &&
	    (strcmp(sev, "WARNING") == 0 || strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
		log_warnx("database: %s: %s", sev, line);
	else
		log_debug("database: %s: %s", sev != NULL ? sev : "NOTICE", line);
}

/* A named prepared statement that already exists (42P05) or has gone (26000): the server connection is
 * shared with other clients, i.e. a transaction pooler stands in between. Retrying cannot help. */
static void
db_check_pooler(const struct db *db, const PGresult *res)
{
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char err[256];

	if (!db->prepared || state == NULL || (strcmp(state, "42P05") != 0 && strcmp(state, "26000") != 0))
		return;
	log_warnx("database: %s: a connection pooler in transaction mode shares our server connection; set "
	          "database.pooling = \"transaction\" (docs/operations-install.md)",
	    db_error(res, err, sizeof(err)));
	exit(EX_CONFIG);
}

/* Behind a transaction pooler the settings our statements rely on cannot be per session: check once
 * that the role carries them, and say how to set them when it does not. */
static void
db_check_settings(struct db *db)
{
	static int warned; /* once per process, whatever its connections */
	PGresult *res;

	if (warned)
		return;
	res = PQexec(db->conn, "SELECT current_setting('enable_seqscan'), current_setting('jit')");
	if (db_ok(res) &&
	    (strcmp(PQgetvalue(res, 0, 0), "off") != 0 || strcmp(PQgetvalue(res, 0, 1), "off") != 0)) {
		log_warnx(
		    "database.pooling = \"transaction\": enable_seqscan is %s and jit is %s for this role; "
		    "the daemon's statements are planned for both off: ALTER ROLE <role> IN DATABASE <db> SET "
		    "enable_seqscan = off; ... SET jit = off (docs/operations-install.md)",
		    PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		warned = 1;
	}
	PQclear(res);
}

static void
db_disconnect(struct db *db)
{
	if (db->conn == NULL)
		return;
	if (PQsocket(db->conn) >= 0 && loop_fd(db->loop, PQsocket(db->conn), 0, NULL, NULL) == -1)
		log_warn("db: unwatch socket");
	PQfinish(db->conn);
	db->conn = NULL;
}

/* Connecting blocks the loop (start-up, and a reconnect after the database went away, when nothing can be
 * recorded anyway), so it is bounded; the operator's conninfo, expanded last, may override both. */
int
db_connect(struct db *db, char *err, size_t errlen)
{
	static const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "5", "payremindd", db->conninfo, NULL };
	PGresult *res;
	int i;

	db_disconnect(db);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn != NULL)
		PQsetNoticeReceiver(db->conn, db_log_notice, NULL);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(db->conn));
		err[strcspn(err, "\n")] = '\0';
		db_disconnect(db);
		return -1;
	}
	/* Every statement of the daemon reaches its rows by key (ids from arrays, the claim index).
	 * Statistics lag behind a nightly load, and a planner that believes "lease_owner = X" is one row
	 * walks the whole table on every batch: forbid table scans, and plan each statement for its actual
	 * arrays (a generic plan guesses 10 rows for unnest()). With table scans priced out, JIT would
	 * compile the occasional scan (rescue, retention) for longer than it runs: no JIT. */
	if (db->pooled)
		db_check_settings(db);
	else
		PQclear(PQexec(db->conn,
		    "SET plan_cache_mode = force_custom_plan; SET enable_seqscan = off; SET jit = off"));
	if (db->check_schema && (db->schema_behind = migrate_check(db->conn, err, errlen)) != 0) {
		db_disconnect(db);
		return -1;
	}
	for (i = 0; i < db->nchans; i++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "LISTEN %s", db->chans[i].channel);
		res = PQexec(db->conn, sql);
		if (!db_ok(res))
			log_warnx("database: %s failed (batch requests are still polled): %s", sql,
			    db_error(res, err, errlen));
		PQclear(res);
	}
	for (i = 0; db->prepared && i < db->nstmts; i++) {
		res = PQprepare(db->conn, db->stmts[i].name, db->stmts[i].sql, 0, NULL);
		db_check_pooler(db, res);
		if (!db_ok(res)) {
			snprintf(err, errlen, "prepare %s: %s", db->stmts[i].name, PQresultErrorMessage(res));
			err[strcspn(err, "\n")] = '\0';
			PQclear(res);
			db_disconnect(db);
			return -1;
		}
		PQclear(res);
	}
	if (PQsetnonblocking(db->conn, 1) == -1 ||
	    loop_fd(db->loop, PQsocket(db->conn), LOOP_READ, db_io, db) == -1) {
		snprintf(err, errlen, "cannot watch the database socket");
		db_disconnect(db);
		return -1;
	}
	db->retry_ms = DB_RETRY_MIN_MS;
	return 0;
}

static void
db_query_free(struct db_query *q)
{
	int i;

	for (i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q);
}

/* Pop the head query and hand it its result. The callback may queue more queries. */
static void
db_finish_head(struct db *db, PGresult *res)
{
	struct db_query *q = db->head;

	db->head = q->next;
	if (db->head == NULL)
		db->tail = NULL;
	db->running = 0;
	db->npending--;
	if (q->cb != NULL)
		q->cb(res, q->arg);
	db_query_free(q);
}

static void
db_reconnect(void *arg)
{
	struct db *db = arg;
	char err[512];

	if (db_connect(db, err, sizeof(err)) == -1) {
		log_warnx("database: reconnect failed: %s; retrying in %d ms", err, db->retry_ms);
		loop_timer_set(db->retry, db->retry_ms);
		db->retry_ms = db->retry_ms * 2 > DB_RETRY_MAX_MS ? DB_RETRY_MAX_MS : db->retry_ms * 2;
		return;
	}
	log_info("database: reconnected");
	db_start_next(db);
}

/* The connection broke: fail every queued query, then reconnect in the background. */
static void
db_broken(struct db *db)
{
	char err[256] = "";

	if (db->conn != NULL)
		snprintf(err, sizeof(err), "%s", PQerrorMessage(db->conn));
	err[strcspn(err, "\n")] = '\0';
	log_warnx("database: connection lost: %s", err);
	PQclear(db->result);
	db->result = NULL;
	db_disconnect(db);
	while (db->head != NULL)
		db_finish_head(db, NULL);
	if (db->retry == NULL)
		db->retry = loop_timer_new(db->loop, db_reconnect, db);
	if (!loop_timer_armed(db->retry))
		loop_timer_set(db->retry, db->retry_ms);
}

static void
db_watch(struct db *db, int want_write)
{
	if (loop_fd(db->loop, PQsocket(db->conn), LOOP_READ | (want_write ? LOOP_WRITE : 0), db_io, db) == -1)
		log_warn("db: watch socket");
}

static void
db_start_next(struct db *db)
{
	struct db_query *q = db->head;
	int rc;

	if (db->running || q == NULL || db->conn == NULL)
		return;
	if (!(db->prepared ? PQsendQueryPrepared(
	                         db->conn, q->name, q->nparams, (const char *const *)q->values, NULL, NULL, 0)
	                   : PQsendQueryParams(db->conn, q->sql, q->nparams, NULL,
	                         (const char *const *)q->values, NULL, NULL, 0))) {
		db_broken(db);
		return;
	}
	db->running = 1;
	db->round_trips++;
	if ((rc = PQflush(db->conn)) == -1)
		db_broken(db);
	else
		db_watch(db, rc == 1);
}

static void
db_notifications(struct db *db)
{
	PGnotify *n;
	int i;

	while (db->conn != NULL && (n = PQnotifies(db->conn)) != NULL) {
		for (i = 0; i < db->nchans; i++)
			if (strcmp(n->relname, db->chans[i].channel) == 0)
				db->chans[i].cb(n->relname, db->chans[i].arg);
		PQfreemem(n);
	}
}

/* Read what the server sent; when the running query is complete, deliver it and start the next. */
static void
db_read(struct db *db)
{
	PGresult *res;

	if (!PQconsumeInput(db->conn)) {
		db_broken(db);
		return;
	}
	db_notifications(db);
	while (db->running && !PQisBusy(db->conn)) {
		if ((res = PQgetResult(db->conn)) != NULL) {
			db_check_pooler(db, res);
			PQclear(db->result);
			db->result = res;
			continue;
		}
		res = db->result;
		db->result = NULL;
		db_finish_head(db, res);
		PQclear(res);
		db_start_next(db);
		if (db->conn == NULL)
			return;
	}
	if (PQstatus(db->conn) == CONNECTION_BAD)
		db_broken(db);
}

static void
db_io(int fd, unsigned events, void *arg)
{
	struct db *db = arg;
	int rc;

	(void)fd;
	if (events & LOOP_WRITE) {
		if ((rc = PQflush(db->conn)) == -1) {
			db_broken(db);
			return;
		}
		db_watch(db, rc == 1);
	}
	if (events & LOOP_READ)
		db_read(db);
}

static const char *
db_sql(const struct db *db, const char *name)
{
	int i;

	for (i = 0; i < db->nstmts; i++)
		if (strcmp(db->stmts[i].name, name) == 0)
			return db->stmts[i].sql;
	fatalx("db: unknown statement %s", name);
}

int
db_query(struct db *db, const char *name, int nparams, const char *const *values, db_cb cb, void *arg)
{
	struct db_query *q;
	int i;

	if (db->conn == NULL || nparams > DB_MAX_PARAMS)
		return -1;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		fatal("db_query");
	q->name = name;
	q->sql = db_sql(db, name);
	q->nparams = nparams;
	for (i = 0; i < nparams; i++)
		if (values[i] != NULL && (q->values[i] = strdup(values[i])) == NULL)
			fatal("db_query");
	q->cb = cb;
	q->arg = arg;
	if (db->tail != NULL)
		db->tail->next = q;
	else
		db->head = q;
	db->tail = q;
	db->npending++;
	db_start_next(db);
	return 0;
}

long
db_round_trips(const struct db *db)
{
	return db->round_trips;
}

int
db_pending(const struct db *db)
{
	return db->npending;
}

int
db_up(const struct db *db)
{
	return db->conn != NULL;
}

PGresult *
db_exec(struct db *db, const char *name, int nparams, const char *const *values)
{
	PGresult *res;

	if (db->conn == NULL || db->running)
		return NULL;
	if (PQsetnonblocking(db->conn, 0) == -1)
		return NULL;
	res = db->prepared ? PQexecPrepared(db->conn, name, nparams, values, NULL, NULL, 0)
	                   : PQexecParams(db->conn, db_sql(db, name), nparams, NULL, values, NULL, NULL, 0);
	(void)PQsetnonblocking(db->conn, 1);
	return res;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	while (db->head != NULL)
		db_finish_head(db, NULL);
	PQclear(db->result);
	db_disconnect(db);
	free(db->conninfo);
	free(db);
}
