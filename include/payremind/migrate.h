/* Schema migrations: the numbered sql/NNN_name.sql files, compiled in, applied in order. */
#ifndef PAYREMIND_MIGRATE_H
#define PAYREMIND_MIGRATE_H

#include <stddef.h>
#include <libpq-fe.h>

struct sql_migration {
	int version;
	const char *name;
	const char *sql;
};

/* The migrations in version order, ended by an entry whose name is NULL (generated at build time). */
extern const struct sql_migration sql_migrations[];

/* Apply every migration not yet recorded in payremind.schema_migrations, each in its own transaction,
 * under an advisory lock so concurrent runs wait for each other. *applied counts the new ones.
 * 0, or -1 with the failing migration and PostgreSQL's message in err. */
int migrate_apply(PGconn *conn, int *applied, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Whether the database has every compiled-in migration: 0 yes, 1 no (err says to run payremindctl
 * migrate), -1 on a database error (in err). */
int migrate_check(PGconn *conn, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
