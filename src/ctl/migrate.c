/* payremindctl migrate: applies the compiled-in SQL migrations not yet recorded. */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "payremind/migrate.h"

#include "ctl.h"

/* Sub-commands that take no options still answer --help and refuse anything else. */
static int
ctl_no_args(const char *cmd, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		ctl_help(cmd);
		exit(0);
	}
	if (argc > 1)
		return ctl_usage_error(cmd, "unexpected argument %s", argv[1]);
	return 0;
}

int
ctl_cmd_migrate(struct ctl *ctl, int argc, char **argv)
{
	char err[1024];
	int applied, rc;

	if ((rc = ctl_no_args("migrate", argc, argv)) != 0)
		return rc;
	ctl_connect(ctl);
	if (migrate_apply(ctl->conn, &applied, err, sizeof(err)) == -1) {
		fprintf(stderr, "payremindctl migrate: %s\n", err);
		return EX_DATAERR;
	}
	if (applied == 0)
		printf("schema up to date\n");
	else
		printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
	return 0;
}
