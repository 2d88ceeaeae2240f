/* Applies the compiled-in SQL migrations in order, once each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payremind/migrate.h"

#define MIGRATE_LOCK_KEY "7202202701" /* advisory lock id shared by every payremindctl migrate */

static const char migrate_bootstrap[] =
    "CREATE SCHEMA IF NOT EXISTS payremind;"
    "CREATE TABLE IF NOT EXISTS payremind.schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

/* Run sql (one or more statements); 0, or -1 with PostgreSQL's message in err. */
static int
migrate_exec(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* 1 when the version is recorded, 0 when not, -1 on error. */
static int
migrate_is_applied(PGconn *conn, int version, char *err, size_t errlen)
{
	char v[16];
	const char *params[1] = { v };
	PGresult *res;
	int rc;

	snprintf(v, sizeof(v), "%d", version);
	res = PQexecParams(conn, "SELECT 1 FROM payremind.schema_migrations WHERE version = $1", 1, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "schema_migrations: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		rc = -1;
	} else
		rc = PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

/* Serialises every migrate, through any pooler: a transaction-scoped lock (a session lock would stay with
 * a pooled server connection), taken first in each transaction below. */
#define MIGRATE_LOCK "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")"

/* The bootstrap under the lock: concurrent CREATE ... IF NOT EXISTS can otherwise collide. */
static int
migrate_bootstrap_tx(PGconn *conn, char *err, size_t errlen)
{
	if (migrate_exec(conn, "BEGIN", "schema_migrations", err, errlen) == -1)
		return -1;
	if (migrate_exec(conn, MIGRATE_LOCK, "lock", err, errlen) == -1 ||
	    migrate_exec(conn, migrate_bootstrap, "schema_migrations", err, errlen) == -1 ||
	    migrate_exec(conn, "COMMIT", "schema_migrations", err, errlen) == -1) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return 0;
}

/* One migration in its own transaction, under the lock, checked again there and recorded in the same
 * transaction: 1 when applied, 0 when another migrate did it meanwhile, -1 on error. */
static int
migrate_one(PGconn *conn, const struct sql_migration *m, char *err, size_t errlen)
{
	char record[256];
	int done;

	snprintf(record, sizeof(record),
	    "INSERT INTO payremind.schema_migrations (version, name) VALUES (%d, '%s')", m->version, m->name);
	if (migrate_exec(conn, "BEGIN", m->name, err, errlen) == -1)
		return -1;
	if (migrate_exec(conn, MIGRATE_LOCK, "lock", err, errlen) == -1 ||
	    (done = migrate_is_applied(conn, m->version, err, errlen)) == -1 ||
	    (!done &&
	        (migrate_exec(conn, m->sql, m->name, err, errlen) == -1 ||
	            migrate_exec(conn, record, m->name, err, errlen) == -1)) ||
	    migrate_exec(conn, "COMMIT", m->name, err, errlen) == -1) {
		PQclear(PQexec(conn, "ROLLBACK"));
		return -1;
	}
	return !done;
}

int
migrate_apply(PGconn *conn, int *applied, char *err, size_t errlen)
{
	const struct sql_migration *m;
	int done, rc;

	*applied = 0;
	if (migrate_bootstrap_tx(conn, err, errlen) == -1)
		return -1;
	for (m = sql_migrations; m->name != NULL; m++) {
		if ((done = migrate_is_applied(conn, m->version, err, errlen)) == -1)
			return -1;
		if (done)
			continue;
		if ((rc = migrate_one(conn, m, err, errlen)) == -1)
			return -1;
		*applied += rc;
	}
	return 0;
}

/* The highest version compiled in. */
static int
migrate_latest(void)
{
	const struct sql_migration *m;
	int v = 0;

	for (m = sql_migrations; m->name != NULL; m++)
		v = m->version > v ? m->version : v;
	return v;
}

int
migrate_check(PGconn *conn, char *err, size_t errlen)
{
	PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM payremind.schema_migrations");
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int have = 0, want = migrate_latest();

	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		have = atoi(PQgetvalue(res, 0, 0));
	else if (state == NULL || (strcmp(state, "42P01") != 0 && strcmp(state, "3F000") != 0)) {
		snprintf(err, errlen, "schema version: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		return -1;
	}
	PQclear(res);
	if (have >= want)
		return 0;
	if (have == 0)
		snprintf(err, errlen, "the database has no payremind schema: run payremindctl migrate");
	else
		snprintf(err, errlen,
		    "the database schema is at version %d and this payremind needs %d: run payremindctl migrate",
		    have, want);
	return 1;
}
