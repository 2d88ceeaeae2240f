/* Schema migrations: the numbered sql/NNN_name.sql files, compiled in, applied in order. */
#ifndef PAYREMIND_MIGRATE_H
#define PAYREMIND_MIGRATE_H

#include <stddef.h>

struct sql_migration {
	int version;
	const char *name;
	const char *sql;
};

/* The migrations in version order, ended by an entry whose name is NULL (generated at build time). */
extern const struct sql_migration sql_migrations[];

#endif
