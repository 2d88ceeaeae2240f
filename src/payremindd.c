/* payremindd: the daemon entry point: options, start-up in dependency order, the loop, exit codes. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <curl/curl.h>
#include <uuid/uuid.h>

#include "payremind/conf.h"
#include "payremind/db.h"
#include "payremind/log.h"
#include "payremind/loop.h"
#include "payremind/sched.h"
#include "payremind/store.h"

#define STOP_GRACE_MS 2000 /* beyond the gateway timeout, for recording what came back */

struct daemon {
	const char *conf_path;
	struct conf *conf;
	struct loop *loop;
	struct db *db;
	struct sched *sched;
	struct loop_timer *poll;
	struct loop_timer *stop_check;
	struct loop_timer *stop_deadline;
	char owner[40];
	int once;
	int stopping;
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: payremindd [-c FILE] [--once] [-n|--check-config] [-V|--version] [-h|--help]\n");
}

static const char *
default_conf_path(void)
{
	const char *env = getenv("PAYREMIND_CONFIG");

	return env != NULL && *env ? env : PAYREMIND_SYSCONFDIR "/payremind/payremind.conf";
}

/* Load the configuration or print every error. Exit 78 on errors; with check, exit 0 when good. */
static struct conf *
load_conf(const char *path, int check)
{
	struct conf_errors errs = { 0 };
	struct conf *conf;
	int i;

	if (conf_load(path, &conf, &errs) == -1) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		conf_errors_free(&errs);
		exit(EX_CONFIG);
	}
	if (check) {
		printf("configuration OK\n");
		conf_free(conf);
		exit(0);
	}
	return conf;
}

static void
batch_done(const struct sched_stats *b, void *arg)
{
	struct daemon *d = arg;

	if (d->once) {
		printf("sent=%ld failed=%ld retried=%ld unknown=%ld skipped=%ld cancelled=%ld\n", b->sent,
		    b->failed, b->retried, b->unknown, b->skipped, b->cancelled);
		fflush(stdout);
		loop_break(d->loop);
	}
}

static void
poll_tick(void *arg)
{
	struct daemon *d = arg;

	if (!d->stopping) {
		sched_batch(d->sched);
		loop_timer_set(d->poll, (int64_t)d->conf->schedule.poll_interval_s * 1000);
	}
}

static void
stop_check(void *arg)
{
	struct daemon *d = arg;

	if (!sched_busy(d->sched))
		loop_break(d->loop);
	else
		loop_timer_set(d->stop_check, 50);
}

static void
stop_deadline(void *arg)
{
	struct daemon *d = arg;

	log_warnx("stop: %d requests still in flight at the deadline; their reminders are rescued later",
	    sched_in_flight(d->sched));
	loop_break(d->loop);
}

/* SIGTERM/SIGINT: stop claiming, let in-flight requests finish up to a deadline; a second one exits. */
static void
on_stop(int signo, void *arg)
{
	struct daemon *d = arg;

	if (d->stopping) {
		log_warnx("second signal %d: exiting at once", signo);
		exit(1);
	}
	d->stopping = 1;
	log_info("signal %d: stopping; finishing %d requests in flight", signo, sched_in_flight(d->sched));
	loop_timer_set(d->poll, -1);
	sched_stop(d->sched);
	loop_timer_set(d->stop_check, 0);
	loop_timer_set(d->stop_deadline, d->conf->gateway.timeout_ms + STOP_GRACE_MS);
}

static void
parse_args(int argc, char **argv, struct daemon *d, int *check)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, 'o' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:nVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d->conf_path = optarg;
			break;
		case 'o':
			d->once = 1;
			break;
		case 'n':
			*check = 1;
			break;
		case 'V':
			printf("payremindd %s\n", PAYREMIND_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(EX_USAGE);
	}
}

static void
start(struct daemon *d)
{
	char err[512];
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, d->owner);
	if ((d->loop = loop_new()) == NULL)
		fatal("event loop");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	d->db = db_new(d->loop, d->conf->db_conninfo);
	store_register(d->db);
	if (db_connect(d->db, err, sizeof(err)) == -1) {
		log_warnx("database unavailable: %s", err);
		exit(EX_UNAVAILABLE);
	}
	d->sched = sched_new(d->loop, d->db, d->conf, d->owner, batch_done, d);
	d->poll = loop_timer_new(d->loop, poll_tick, d);
	d->stop_check = loop_timer_new(d->loop, stop_check, d);
	d->stop_deadline = loop_timer_new(d->loop, stop_deadline, d);
	if (loop_signal(d->loop, SIGTERM, on_stop, d) == -1 || loop_signal(d->loop, SIGINT, on_stop, d) == -1)
		fatal("signals");
	signal(SIGPIPE, SIG_IGN);
	log_info("payremindd %s starting: instance %s, dialect %s, sender %s%s", PAYREMIND_VERSION, d->owner,
	    conf_dialect_to_text(d->conf->gateway.dialect), d->conf->short_code,
	    d->once ? ", one batch" : "");
}

static void
finish(struct daemon *d)
{
	sched_free(d->sched);
	db_free(d->db);
	loop_free(d->loop);
	curl_global_cleanup();
	conf_free(d->conf);
}

int
main(int argc, char **argv)
{
	struct daemon d = { 0 };
	int check = 0;

	log_init("payremindd", getenv("PAYREMIND_DEBUG") != NULL);
	d.conf_path = default_conf_path();
	parse_args(argc, argv, &d, &check);
	d.conf = load_conf(d.conf_path, check);
	start(&d);
	if (d.once)
		sched_batch(d.sched);
	else
		loop_timer_set(d.poll, 0);
	if (loop_run(d.loop) == -1)
		fatal("event loop");
	log_info("stopped: sent=%ld failed=%ld retried=%ld unknown=%ld", sched_totals(d.sched)->sent,
	    sched_totals(d.sched)->failed, sched_totals(d.sched)->retried, sched_totals(d.sched)->unknown);
	finish(&d);
	return 0;
}
