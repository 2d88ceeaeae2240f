/* payremindctl: the operators' tool, one function per sub-command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "payremind/conf.h"
#include "payremind/log.h"
#include "payremind/migrate.h"

struct ctl {
	const char *conf_path;
	struct conf *conf;
	PGconn *conn;
};

struct ctl_command {
	const char *name;
	const char *synopsis;
	int (*run)(struct ctl *ctl, int argc, char **argv);
};

static const struct ctl_command *ctl_find(const char *name);

static void
ctl_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: payremindctl [-c FILE] migrate\n"
	    "       payremindctl [-h|--help] [-V|--version]\n");
}

static int
ctl_usage_error(const char *cmd, const char *fmt, const char *arg)
{
	const struct ctl_command *c = ctl_find(cmd);

	fprintf(stderr, "payremindctl %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: payremindctl [-c FILE] %s\n", c != NULL ? c->synopsis : cmd);
	return EX_USAGE;
}

/* Load the configuration (exit 78 with every error) and connect (exit 69 with what to do). */
static void
ctl_connect(struct ctl *ctl)
{
	struct conf_errors errs = { 0 };
	int i;

	if (conf_load(ctl->conf_path, &ctl->conf, &errs) == -1) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		conf_errors_free(&errs);
		exit(EX_CONFIG);
	}
	ctl->conn = PQconnectdb(ctl->conf->db_conninfo);
	if (PQstatus(ctl->conn) != CONNECTION_OK) {
		char *msg = PQerrorMessage(ctl->conn);

		msg[strcspn(msg, "\n")] = '\0';
		fprintf(stderr, "payremindctl: database unavailable: %s; check database.conninfo in %s\n",
		    msg, ctl->conf_path);
		exit(EX_UNAVAILABLE);
	}
}

/* Sub-commands that take no options still answer --help and refuse anything else. */
static int
ctl_no_args(const char *cmd, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: payremindctl [-c FILE] %s\n", ctl_find(cmd)->synopsis);
		exit(0);
	}
	if (argc > 1)
		return ctl_usage_error(cmd, "unexpected argument %s", argv[1]);
	return 0;
}

static int
ctl_migrate(struct ctl *ctl, int argc, char **argv)
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

static const struct ctl_command ctl_commands[] = {
	{ "migrate", "migrate", ctl_migrate },
	{ NULL, NULL, NULL },
};

static const struct ctl_command *
ctl_find(const char *name)
{
	const struct ctl_command *c;

	for (c = ctl_commands; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { 0 };
	const struct ctl_command *cmd;
	const char *env = getenv("PAYREMIND_CONFIG");
	int ch, rc;

	log_init("payremindctl", 0);
	ctl.conf_path = env != NULL && *env ? env : PAYREMIND_SYSCONFDIR "/payremind/payremind.conf";
	while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl.conf_path = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("payremindctl %s\n", PAYREMIND_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return EX_USAGE;
	}
	if ((cmd = ctl_find(argv[optind])) == NULL) {
		fprintf(stderr, "payremindctl: unknown command %s\n", argv[optind]);
		ctl_usage(stderr);
		return EX_USAGE;
	}
	rc = cmd->run(&ctl, argc - optind, argv + optind);
	PQfinish(ctl.conn);
	conf_free(ctl.conf);
	return rc;
}
