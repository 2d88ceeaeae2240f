/* payremindd: the daemon entry point: options, start-up in dependency order, the loop, exit codes. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uuid/uuid.h>

#include "payremind/conf.h"
#include "payremind/db.h"
#include "payremind/listener.h"
#include "payremind/log.h"
#include "payremind/loop.h"
#include "payremind/notify.h"
#include "payremind/retention.h"
#include "payremind/sched.h"
#include "payremind/store.h"

#define STOP_GRACE_MS 2000   /* beyond the gateway timeout, for recording what came back */
#define HEARTBEAT_MS 5000    /* instances.heartbeat_at; readers count a daemon live for 20 s */
#define QUEUE_COUNT_BEATS 12 /* the queue figures of STATUS= are counted every 12th heartbeat */
#define REQUEST_POLL_MS 1000 /* batch requests are polled too: LISTEN does not pass PgBouncer */
#define RETENTION_MS 3600000 /* a retention pass at start-up, then hourly */
#define MAX_REQUESTS 256

struct daemon {
	const char *conf_path;
	struct conf *conf;
	struct loop *loop;
	struct db *db;
	struct db *rec; /* the scheduler's second connection, for outcomes */
	struct db *tx;  /* the scheduler's claim transaction */
	struct sched *sched;
	struct listener *listener; /* NULL with --once */
	struct retention *retention;
	struct loop_timer *retain, *poll, *heartbeat, *requests, *watchdog, *stop_check, *stop_deadline;
	char owner[40];
	char hostname[256];
	char queue[96]; /* the last queue figures, for STATUS= */
	long beats;
	int once;
	int stopping;
	int picking;
	int controlling;               /* a read of payremind.control is under way */
	int paused;                    /* an operator paused sending */
	int control_known;             /* payremind.control was read once: batches may start */
	int64_t pending[MAX_REQUESTS]; /* operator requests for the next batch */
	int npending;
	int64_t running[MAX_REQUESTS]; /* requests the running batch answers */
	int nrunning;
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: payremindd [-c FILE] [--once] [-n|--check-config] [-V|--version] [-h|--help]\n");
}

static void
help(void)
{
	usage(stdout);
	printf(
	    "Send the SMS payment reminders that are due, receive replies and delivery reports, serve the\n"
	    "payment page. Runs under systemd (Type=notify); payremindctl steers it through the database.\n"
	    "  -c, --config FILE     the configuration (default $PAYREMIND_CONFIG, then "
	    "/etc/payremind/payremind.conf)\n"
	    "      --once            one batch in-process, without the listener: send what is due now, wait\n"
	    "                        for the answers, print the figures and exit 0 (obeys payremindctl pause)\n"
	    "  -n, --check-config    print `configuration OK`, or every error as FILE:LINE: message (exit 78)\n"
	    "  -V, --version         print the version\n"
	    "  -h, --help            this help\n"
	    "Logs go to stderr with journald priorities: one line at start-up, one per delivery attempt;\n"
	    "PAYREMIND_DEBUG=1 adds the effective configuration and the scheduler's decisions.\n"
	    "Exit codes: 0 ok, 64 usage, 69 database or listener unavailable, 78 configuration error.\n");
}

static const char *
default_conf_path(void)
{
	const char *env = getenv("PAYREMIND_CONFIG");

	return env != NULL && *env ? env : "/etc/payremind/payremind.conf";
}

/* The start-up check's report: each template's encoding and segments at its longest rendering. */
static void
log_templates(const struct conf *conf)
{
	static const char *const langs[] = { "fr", "en" };
	struct gsm_info info;
	char err[256];
	size_t i;

	for (i = 0; i < 2; i++)
		if (conf_template_longest(conf, langs[i], &info, err, sizeof(err)) == 0)
			log_debug("templates.%s: %s, %d segment%s (%zu %s) at its longest%s", langs[i],
			    info.coding == GSM_CODING_GSM7 ? "GSM-7" : "UCS-2", info.segments,
			    info.segments == 1 ? "" : "s", info.units,
			    info.coding == GSM_CODING_GSM7 ? "septets" : "UTF-16 units",
			    conf->templates.transliterate ? ", transliterated" : "");
}

/* Load the configuration or print every error. Exit 78 on errors; with check, exit 0 when good. */
static struct conf *
load_conf(const char *path, int check)
{
	struct conf *conf = conf_load_or_exit(path, 0);

	log_templates(conf);
	if (check) {
		printf("configuration OK\n");
		conf_free(conf);
		exit(0);
	}
	return conf;
}

static void
ignore_result(PGresult *res, void *arg)
{
	char err[256];

	if (!db_ok(res))
		log_warnx("%s: %s", (const char *)arg, db_error(res, err, sizeof(err)));
}

/* Start a batch when none runs; the requests picked so far are answered by it. */
static void
run_batch(struct daemon *d)
{
	if (d->stopping || !sched_batch(d->sched))
		return;
	memcpy(d->running, d->pending, sizeof(d->pending[0]) * (size_t)d->npending);
	d->nrunning = d->npending;
	d->npending = 0;
}

static void
batch_done(const struct sched_stats *b, void *arg)
{
	struct daemon *d = arg;
	long figures[6] = { b->sent, b->failed, b->retried, b->unknown, b->skipped, b->cancelled };
	double since;

	if (store_batch_done(
	        d->db, d->owner, d->running, d->nrunning, figures, ignore_result, "batch result") == -1)
		log_warnx("batch result not recorded: database unavailable");
	d->nrunning = 0;
	if (d->once) {
		printf("sent=%ld failed=%ld retried=%ld unknown=%ld rows_skipped=%ld rows_closed=%ld%s%s\n",
		    b->sent, b->failed, b->retried, b->unknown, b->skipped, b->cancelled,
		    d->paused ? " (sending paused by an operator: payremindctl status)" : "",
		    sched_circuit(d->sched, &since) != 0 ? " (gateway circuit open)" : "");
		fflush(stdout);
		d->stopping = 1;
		loop_timer_set(d->stop_check, 0);
	} else if (d->npending > 0)
		loop_timer_set(d->poll, 0); /* requests arrived during this batch */
}

static void
poll_tick(void *arg)
{
	struct daemon *d = arg;
	int64_t next = (int64_t)d->conf->schedule.poll_interval_s * 1000, open;

	if (d->stopping)
		return;
	run_batch(d);
	/* a window that opens before the next poll: be there when it does */
	if ((open = sched_next_opening_ms(d->sched)) >= 0 && open + 1 < next)
		next = open + 1;
	loop_timer_set(d->poll, next);
}

static void
picked(PGresult *res, void *arg)
{
	struct daemon *d = arg;
	int i;

	d->picking = 0;
	if (!db_ok(res) || PQntuples(res) == 0)
		return;
	for (i = 0; i < PQntuples(res) && d->npending < MAX_REQUESTS; i++)
		d->pending[d->npending++] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	log_info(
	    "batch requested by an operator (%d request%s)", PQntuples(res), PQntuples(res) == 1 ? "" : "s");
	run_batch(d);
}

static void
pick_requests(struct daemon *d)
{
	if (d->stopping || d->once || d->picking)
		return;
	if (store_batch_pick(d->db, d->owner, picked, d) == 0)
		d->picking = 1;
}

/* payremind.control: an operator paused or resumed sending (payremindctl pause/resume). */
static void
control_cb(PGresult *res, void *arg)
{
	struct daemon *d = arg;
	char err[256];
	int paused;

	d->controlling = 0;
	if (!db_ok(res) || PQntuples(res) != 1) {
		log_warnx("reading payremind.control: %s; %s", db_error(res, err, sizeof(err)),
		    d->control_known ? "sending stays as it was" : "no batch starts before it is read");
		if (d->once)
			exit(EX_UNAVAILABLE);
		return;
	}
	paused = PQgetvalue(res, 0, 0)[0] == 't';
	if (paused && !d->paused)
		log_notice("sending paused by %s: %s", PQgetvalue(res, 0, 2),
		    PQgetisnull(res, 0, 3) ? "no reason given" : PQgetvalue(res, 0, 3));
	sched_set_paused(d->sched, paused);
	if (d->paused && !paused && !d->stopping && !d->once)
		loop_timer_set(d->poll, 0); /* resumed: a batch now */
	d->paused = paused;
	if (!d->control_known) { /* the first batch starts once the pause is known, --once's too */
		d->control_known = 1;
		if (d->once)
			run_batch(d);
		else
			loop_timer_set(d->poll, 0);
	}
}

static void
read_control(struct daemon *d)
{
	if (d->controlling)
		return;
	if (store_control(d->db, control_cb, d) == 0)
		d->controlling = 1;
	else if (d->once) {
		log_warnx("database unavailable: cannot read whether sending is paused");
		exit(EX_UNAVAILABLE);
	}
}

static void
requests_tick(void *arg)
{
	struct daemon *d = arg;

	read_control(d);
	pick_requests(d);
	if (!d->stopping)
		sched_replies(d->sched); /* the polling side of NOTIFY payremind_replies */
	loop_timer_set(d->requests, REQUEST_POLL_MS);
}

static void
on_notify(const char *channel, void *arg)
{
	struct daemon *d = arg;

	if (strcmp(channel, "payremind_replies") == 0)
		sched_replies(d->sched);
	else
		pick_requests(d);
}

static void
beat_cb(PGresult *res, void *arg)
{
	struct daemon *d = arg;
	char err[256];

	if (!db_ok(res) || PQntuples(res) != 1) {
		log_warnx("heartbeat: %s", db_error(res, err, sizeof(err)));
		return;
	}
	sched_set_share(d->sched, atoi(PQgetvalue(res, 0, 0)));
	if (!PQgetisnull(res, 0, 1))
		snprintf(d->queue, sizeof(d->queue), "queued=%s sending=%s unknown=%s", PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
	notify_status("%s%s; this daemon: sent=%ld failed=%ld retried=%ld in_flight=%d",
	    d->paused ? "SENDING PAUSED; " : "", d->queue, sched_totals(d->sched)->sent,
	    sched_totals(d->sched)->failed, sched_totals(d->sched)->retried, sched_in_flight(d->sched));
}

static void
heartbeat_tick(void *arg)
{
	struct daemon *d = arg;
	static const char *const circuits[] = { "closed", "open", "half_open" };
	char status[200];
	double since;
	int circuit = sched_circuit(d->sched, &since);

	snprintf(status, sizeof(status), "%s%s%s; sent=%ld failed=%ld in_flight=%d",
	    d->stopping ? "stopping" : "running", d->paused ? "; sending paused" : "",
	    circuit != 0 ? "; gateway circuit open" : "", sched_totals(d->sched)->sent,
	    sched_totals(d->sched)->failed, sched_in_flight(d->sched));
	/* Counting the queue scans the reminders: once a minute is enough for STATUS=. */
	if (store_heartbeat(d->db, d->owner, d->hostname, (int)getpid(), status,
	        d->beats++ % QUEUE_COUNT_BEATS == 0, circuits[circuit], since, d->conf->short_code,
	        d->conf->gateway.rate_per_second, beat_cb, d) == -1)
		log_warnx("heartbeat: database unavailable");
	if (!d->stopping)
		loop_timer_set(d->heartbeat, HEARTBEAT_MS);
}

static void
retention_tick(void *arg)
{
	struct daemon *d = arg;

	retention_run(d->retention);
	loop_timer_set(d->retain, RETENTION_MS);
}

static void
watchdog_tick(void *arg)
{
	struct daemon *d = arg;

	notify_watchdog();
	loop_timer_set(d->watchdog, notify_watchdog_usec() / 2000 > 0 ? notify_watchdog_usec() / 2000 : 1);
}

/* Shut-down ends when nothing is in flight or unrecorded; then the instance row is marked stopped. */
static void
stop_check(void *arg)
{
	struct daemon *d = arg;

	if (sched_busy(d->sched) || retention_busy(d->retention) || db_pending(d->db) > 0 ||
	    db_pending(d->rec) > 0 || db_pending(d->tx) > 0) {
		loop_timer_set(d->stop_check, 20);
		return;
	}
	loop_break(d->loop);
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
	notify_stopping();
	log_info("signal %d: stopping; finishing %d requests in flight", signo, sched_in_flight(d->sched));
	loop_timer_set(d->poll, -1);
	loop_timer_set(d->requests, -1);
	loop_timer_set(d->retain, -1);
	retention_stop(d->retention);
	sched_stop(d->sched);
	loop_timer_set(d->stop_check, 0);
	loop_timer_set(d->stop_deadline, d->conf->gateway.timeout_ms + STOP_GRACE_MS);
}

/* SIGHUP: load and check the file again; swap it in whole, or keep the running one and say why. */
static void
on_reload(int signo, void *arg)
{
	struct daemon *d = arg;
	struct conf_errors errs = { 0 };
	struct conf *conf;
	char keys[512];
	int i;

	(void)signo;
	notify_reloading();
	if (conf_load(d->conf_path, &conf, &errs) == -1) {
		log_warnx("reload: %s has %d error%s; keeping the running configuration", d->conf_path,
		    errs.n, errs.n == 1 ? "" : "s");
		for (i = 0; i < errs.n; i++)
			log_warnx("reload: %s", errs.msgs[i]);
		conf_errors_free(&errs);
	} else {
		if (conf_restart_changes(d->conf, conf, keys, sizeof(keys)) > 0)
			log_notice("reload: %s changed; that takes a restart to apply", keys);
		sched_set_conf(d->sched, conf);
		listener_set_conf(d->listener, conf);
		retention_set_conf(d->retention, conf);
		conf_free(d->conf);
		d->conf = conf;
		log_info("reload: configuration from %s in use", d->conf_path);
	}
	notify_ready();
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
			help();
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
start_timers(struct daemon *d)
{
	d->poll = loop_timer_new(d->loop, poll_tick, d);
	d->heartbeat = loop_timer_new(d->loop, heartbeat_tick, d);
	d->requests = loop_timer_new(d->loop, requests_tick, d);
	d->watchdog = loop_timer_new(d->loop, watchdog_tick, d);
	d->retain = loop_timer_new(d->loop, retention_tick, d);
	d->stop_check = loop_timer_new(d->loop, stop_check, d);
	d->stop_deadline = loop_timer_new(d->loop, stop_deadline, d);
	loop_timer_set(d->heartbeat, 0);
	loop_timer_set(d->retain, 0);
	if (notify_watchdog_usec() > 0)
		loop_timer_set(d->watchdog, 0);
	if (!d->once)
		loop_timer_set(d->requests, REQUEST_POLL_MS);
}

/* 1 while a query or a gateway request awaits its reply (the tests' simulated clock waits for it). */
static int
daemon_busy(void *arg)
{
	struct daemon *d = arg;

	return db_pending(d->db) > 0 || db_pending(d->rec) > 0 || db_pending(d->tx) > 0 ||
	    sched_in_flight(d->sched) > 0;
}

/* The effective configuration, one log line per key (secrets redacted by conf_dump). */
static void
log_conf(const struct conf *conf)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		return;
	conf_dump(conf, fp);
	fclose(fp);
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		log_debug("config: %s", line);
	free(buf);
}

static void
start(struct daemon *d)
{
	char err[512];
	uuid_t u;

	/* The policy switches TZ from one recipient's zone to the next (tz.c). Give TZ its slot in the
	 * environment now, before the listener's threads start: later switches then only replace its value,
	 * never reallocate the environment under a thread reading it. */
	if (setenv("TZ", ":UTC", 0) == -1)
		fatal("setenv TZ");
	uuid_generate_random(u);
	uuid_unparse_lower(u, d->owner);
	if (gethostname(d->hostname, sizeof(d->hostname) - 1) == -1)
		snprintf(d->hostname, sizeof(d->hostname), "unknown");
	if ((d->loop = loop_new()) == NULL)
		fatal("event loop");
	log_buffered(); /* one line per delivery attempt: written once per loop iteration */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	d->db = db_new(d->loop, d->conf->db_conninfo, d->conf->db_pooled);
	store_register(d->db);
	db_require_schema(d->db);
	if (!d->once && !d->conf->db_pooled) { /* LISTEN would stick to one pooled server connection */
		db_listen(d->db, "payremind_batch", on_notify, d);
		db_listen(d->db, "payremind_replies", on_notify, d);
	}
	d->rec = db_new(d->loop, d->conf->db_conninfo, d->conf->db_pooled);
	store_register(d->rec);
	d->tx = db_new(d->loop, d->conf->db_conninfo, d->conf->db_pooled);
	store_register(d->tx);
	if (db_connect(d->db, err, sizeof(err)) == -1 && db_schema_behind(d->db)) {
		log_warnx("%s (database.conninfo in %s)", err, d->conf_path);
		exit(EX_CONFIG); /* systemd does not restart on 78: migrating is an operator's step */
	}
	if (!db_up(d->db) || db_connect(d->rec, err, sizeof(err)) == -1 ||
	    db_connect(d->tx, err, sizeof(err)) == -1) {
		log_warnx("database unavailable: %s; check database.conninfo in %s", err, d->conf_path);
		exit(EX_UNAVAILABLE);
	}
	d->sched = sched_new(d->loop, d->db, d->rec, d->tx, d->conf, d->owner, batch_done, d);
	d->retention = retention_new(d->db, d->conf);
	loop_set_busy(d->loop, daemon_busy, d);
	sched_set_continuous(d->sched, !d->once);
	if (!d->once && (d->listener = listener_start(d->conf, err, sizeof(err))) == NULL) {
		log_warnx("listener: %s", err);
		exit(EX_UNAVAILABLE);
	}
	if (loop_signal(d->loop, SIGTERM, on_stop, d) == -1 ||
	    loop_signal(d->loop, SIGINT, on_stop, d) == -1 ||
	    loop_signal(d->loop, SIGHUP, on_reload, d) == -1)
		fatal("signals");
	signal(SIGPIPE, SIG_IGN);
	start_timers(d);
	if (d->once)
		snprintf(err, sizeof(err), "one batch");
	else
		snprintf(
		    err, sizeof(err), "listening on %s:%d", d->conf->listen.address, d->conf->listen.port);
	log_info("payremindd %s starting: instance %s on %s, dialect %s, sender %s, rate %.1f/s, %s "
	         "(configuration %s; PAYREMIND_DEBUG=1 logs it in full)",
	    PAYREMIND_VERSION, d->owner, d->hostname, conf_dialect_to_text(d->conf->gateway.dialect),
	    d->conf->short_code, d->conf->gateway.rate_per_second, err, d->conf_path);
	log_conf(d->conf);
}

/* Mark the instance stopped (synchronously: the loop is over) and release everything. */
static void
finish(struct daemon *d)
{
	store_instance_stop(d->db, d->owner);
	log_info("stopped: sent=%ld failed=%ld retried=%ld unknown=%ld; %ld + %ld + %ld database round trips",
	    sched_totals(d->sched)->sent, sched_totals(d->sched)->failed, sched_totals(d->sched)->retried,
	    sched_totals(d->sched)->unknown, db_round_trips(d->db), db_round_trips(d->rec),
	    db_round_trips(d->tx));
	listener_stop(d->listener);
	sched_free(d->sched);
	retention_free(d->retention);
	db_free(d->tx);
	db_free(d->rec);
	db_free(d->db);
	loop_free(d->loop);
	curl_global_cleanup();
	conf_free(d->conf);
}

int
main(int argc, char **argv)
{
	struct daemon d = { 0 };
	const char *debug = getenv("PAYREMIND_DEBUG");
	int check = 0;

	log_init("payremindd", debug != NULL && *debug != '\0' && strcmp(debug, "0") != 0);
	d.conf_path = default_conf_path();
	parse_args(argc, argv, &d, &check);
	d.conf = load_conf(d.conf_path, check);
	start(&d);
	notify_ready();
	read_control(&d); /* then the first batch */
	if (loop_run(d.loop) == -1)
		fatal("event loop");
	finish(&d);
	return 0;
}
