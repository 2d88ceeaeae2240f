/* The webhook listener: libmicrohttpd threads with a PostgreSQL connection of their own; SPEC §6 routes. */
#define _GNU_SOURCE /* asprintf, open_memstream, strndup */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "payremind/checkout.h"
#include "payremind/db.h"
#include "payremind/html.h"
#include "payremind/keyword.h"
#include "payremind/listener.h"
#include "payremind/log.h"
#include "payremind/loop.h"
#include "payremind/metrics.h"
#include "payremind/paypage.h"
#include "payremind/route.h"
#include "payremind/webhook.h"

#define LISTENER_BODY_MAX (16 * 1024)    /* larger bodies get 413: no webhook of ours comes close */
#define LISTENER_BACKLOG 4096u           /* DLR bursts must queue in the kernel, not be refused */
#define LISTENER_MAX_CONNECTIONS 1024u   /* lowered to what RLIMIT_NOFILE leaves beside LISTENER_FD_RESERVE */
#define LISTENER_FD_RESERVE 256u         /* descriptors kept for the database, libcurl, logs and files */
#define LISTENER_CONN_MEMORY (64 * 1024) /* per connection: request line (Kannel's GET) and headers */
#define LISTENER_CONN_TIMEOUT_S 30u      /* a connection with no traffic at all is dropped */
#define LISTENER_PER_CLIENT 64u    /* connections (requests through a trusted proxy) per client address */
#define LISTENER_DEADLINE_MS 10000 /* a whole request (line, headers, body) must be in within this */
#define LISTENER_SWEEP_MS 250      /* how often the sweeper looks for requests past their deadline */
#define LISTENER_REPORT_MS 10000   /* refused and swept connections are logged at most this often */
#define LISTENER_MHD_LOG_MAX 20    /* libmicrohttpd messages logged per LISTENER_REPORT_MS */
#define LISTENER_COUNT_BUCKETS 256u
#define LISTENER_THREADS 4u         /* /healthz and /metrics stay answerable beside slow requests */
#define LISTENER_DB_TIMEOUT_MS 5000 /* a statement taking longer is cancelled: 503 */
#define LISTENER_DB_RETRY_MS 1000   /* no reconnect attempt more often than this */
#define LISTENER_OPENS_MS 1000      /* openings of payment links are written at most this often */
#define LISTENER_OPENS_MAX 100000u  /* openings kept between two writes; more are not counted */
#define LISTENER_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define LISTENER_TWIML "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"

/* One GET of a payment link, to be counted: the token's SHA-256 (never the token) and when. */
struct listener_open {
	char hash[2 * SHA256_DIGEST_LENGTH + 1];
	double at;
};

/* How many connections (or proxied requests) one client address holds now. */
struct listener_count {
	struct listener_count *next;
	unsigned n;
	char addr[WEBHOOK_ADDR_MAX];
};

/* One TCP connection, from libmicrohttpd's STARTED notification to its CLOSED one. */
struct listener_conn {
	struct listener_conn *prev, *next;
	int fd;
	int trusted;        /* the peer is in listen.trusted_proxies */
	long long deadline; /* monotonic ms by which the request being received must be in; 0: none */
	char peer[WEBHOOK_ADDR_MAX];
};

/* What the listener keeps of the configuration; swapped whole by listener_set_conf. */
struct listener_secrets {
	char *key;          /* listen.secret, NULL when none */
	char *twilio_token; /* gateway.secret when the dialect is twilio, NULL otherwise */
	char *public_url;   /* listen.public_url without trailing '/' */
	char *page_path;    /* the path of token.base_url ("/p/"): the payment page lives under it */
	char *checkout_url; /* checkout.url, NULL when there is no online payment */
	char *checkout_key; /* checkout.secret: signs hand-offs, checks the portal's callbacks */
	int checkout_ttl_s;
	char *bank_payee, *mail_address, *permit; /* paypage.* */
};

struct listener {
	struct MHD_Daemon *mhd; /* NULL: no-op listener (listen.port = 0) */
	char *conninfo;
	/* One database connection per libmicrohttpd thread, each with its own lock, so a slow statement
	 * (the daemon's batches load the same server) holds up one thread's requests, not all of them. */
	struct listener_pg {
		pthread_mutex_t mtx; /* guards pg and retry_at */
		PGconn *pg;
		long long retry_at; /* monotonic ms before which no reconnect is tried... */
		unsigned failed_at; /* ...unless another slot connected since (db_connects moved on) */
	} db[LISTENER_THREADS];
	atomic_uint db_connects;  /* successful connections: the database is back for every slot */
	pthread_mutex_t conf_mtx; /* guards sec */
	struct listener_secrets sec;
	char start_err[256]; /* libmicrohttpd's last complaint while starting */
	int starting;
	/*
	 * conn_mtx guards conns, counts and the figures below. libmicrohttpd calls the CLOSED notification
	 * (which takes it) before it closes the socket, so the sweeper, which shuts sockets down under it,
	 * never touches a descriptor that was closed and handed to someone else in between.
	 */
	pthread_mutex_t conn_mtx;
	pthread_cond_t sweep_cv;
	struct listener_conn *conns;
	struct listener_count *counts[LISTENER_COUNT_BUCKETS];
	unsigned long refused, swept; /* since the last report */
	long long report_at;
	int stopping;
	int sweeper_running;
	pthread_t sweeper;
	pthread_mutex_t
	    mhdlog_mtx; /* guards the three below: how much of libmicrohttpd's chatter is logged */
	long long mhdlog_until;
	unsigned mhdlog_count;
	unsigned long mhdlog_dropped;
	pthread_mutex_t opens_mtx; /* guards the openings below, written by the sweeper once a second */
	struct listener_open *opens;
	size_t nopens, capopens;
	unsigned long opens_dropped;
	long long opens_at;                                       /* monotonic ms of the next write */
	char trusted[CONF_MAX_TRUSTED_PROXIES][WEBHOOK_ADDR_MAX]; /* listen.trusted_proxies, canonical */
	const char *trusted_v[CONF_MAX_TRUSTED_PROXIES];
	size_t ntrusted;
};

/* One request, from its request line to its completion. */
struct listener_req {
	char *uri; /* the request target as received, query included: the Twilio signature covers it */
	const struct route *route;
	char client[WEBHOOK_ADDR_MAX]; /* the peer, or the X-Forwarded-For client behind a trusted proxy */
	int counted;                   /* client's count holds this request (a proxied client) */
	char method[8];                /* GET, HEAD, POST, ... (the page's handling depends on it) */
	char token[23];                /* the page's token, "" when the path holds none */
	int started;
	int answered; /* an answer was queued before the body: whatever still comes is dropped */
	int too_big;
	char *body;
	size_t len;
	struct webhook_params params;
};

/* An answer: a short text in buf, or a larger one in heap (metrics). */
struct listener_reply {
	unsigned status;
	const char *type;
	const char *allow;
	int page;       /* a payment page: its security headers go along */
	char *location; /* a redirect's target (heap) */
	char buf[320];
	char *heap;
};

/* The first line of a libpq message, for "%.*s". */
#define LISTENER_LINE(msg) (int)strcspn((msg), "\n"), (msg)

static void listener_text(struct listener_reply *rep, unsigned status, const char *fmt, ...) PR_PRINTF(3, 4);

/* A text/plain answer (one line). */
static void
listener_text(struct listener_reply *rep, unsigned status, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(rep->buf, sizeof(rep->buf) - 1, fmt, ap);
	va_end(ap);
	n = strlen(rep->buf);
	if (n > 0 && rep->buf[n - 1] != '\n')
		memcpy(rep->buf + n, "\n", 2);
	rep->status = status;
	rep->type = "text/plain; charset=utf-8";
}

/* ---- configuration snapshot ---- */

static void
listener_secret_free(char *s)
{
	if (s != NULL)
		OPENSSL_clear_free(s, strlen(s));
}

static void
listener_secrets_free(struct listener_secrets *sec)
{
	listener_secret_free(sec->key);
	listener_secret_free(sec->twilio_token);
	listener_secret_free(sec->checkout_key);
	free(sec->public_url);
	free(sec->page_path);
	free(sec->checkout_url);
	free(sec->bank_payee);
	free(sec->mail_address);
	free(sec->permit);
	memset(sec, 0, sizeof(*sec));
}

static char *
listener_strdup_nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

/* The path of a URL ("https://pay.aro.ca/p/" -> "/p/"), newly allocated; "/" when it has none. */
static char *
listener_url_path(const char *url)
{
	CURLU *u = curl_url();
	char *path = NULL, *out;

	if (u == NULL)
		fatal("listener: out of memory");
	if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	out = strdup(path != NULL ? path : "/");
	curl_free(path);
	curl_url_cleanup(u);
	return out;
}

static void
listener_secrets_from(struct listener_secrets *sec, const struct conf *conf)
{
	const char *url = conf->listen.public_url ? conf->listen.public_url : "";
	size_t n = strlen(url);

	while (n > 0 && url[n - 1] == '/')
		n--;
	sec->key = listener_strdup_nonempty(conf->listen.secret);
	sec->twilio_token = conf->gateway.dialect == CONF_DIALECT_TWILIO
	    ? listener_strdup_nonempty(conf->gateway.secret)
	    : NULL;
	sec->public_url = strndup(url, n);
	sec->page_path = listener_url_path(conf->token.base_url);
	sec->checkout_url = listener_strdup_nonempty(conf->checkout.url);
	sec->checkout_key = listener_strdup_nonempty(conf->checkout.secret);
	sec->checkout_ttl_s = conf->checkout.ttl_s;
	sec->bank_payee = strdup(conf->paypage.bank_payee ? conf->paypage.bank_payee : "ARO");
	sec->mail_address = strdup(conf->paypage.mail_address ? conf->paypage.mail_address : "");
	sec->permit = strdup(conf->paypage.permit ? conf->paypage.permit : "");
	if (sec->public_url == NULL || sec->page_path == NULL || sec->bank_payee == NULL ||
	    sec->mail_address == NULL || sec->permit == NULL)
		fatal("listener: out of memory");
}

void
listener_set_conf(struct listener *l, const struct conf *conf)
{
	struct listener_secrets fresh, old;

	if (l == NULL || l->mhd == NULL)
		return;
	listener_secrets_from(&fresh, conf);
	pthread_mutex_lock(&l->conf_mtx);
	old = l->sec;
	l->sec = fresh;
	pthread_mutex_unlock(&l->conf_mtx);
	listener_secrets_free(&old);
}

/* ---- database ---- */

enum listener_db_rc { LISTENER_DB_OK, LISTENER_DB_SQL, LISTENER_DB_BROKEN, LISTENER_DB_TIMEOUT };

/* Connect slot d when it has no connection, at most once per LISTENER_DB_RETRY_MS. Under d->mtx. */
static int
listener_db_connect(struct listener *l, struct listener_pg *d, char *err, size_t errlen)
{
	/* Ours first: the operator's conninfo (expanded from dbname) overrides them. */
	static const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "5", "payremindd-listener", l->conninfo, NULL };
	long long now = loop_now_ms();

	if (d->pg != NULL)
		return 0;
	if (now < d->retry_at && atomic_load(&l->db_connects) == d->failed_at) {
		snprintf(err, errlen, "database unavailable (next attempt in %lld ms)", d->retry_at - now);
		return -1;
	}
	d->pg = PQconnectdbParams(keys, vals, 1);
	if (d->pg != NULL)
		PQsetNoticeReceiver(d->pg, db_log_notice, NULL);
	if (d->pg != NULL && PQstatus(d->pg) == CONNECTION_OK) {
		atomic_fetch_add(&l->db_connects, 1);
		return 0;
	}
	snprintf(err, errlen, "database connection failed: %.*s",
	    LISTENER_LINE(d->pg ? PQerrorMessage(d->pg) : "out of memory"));
	PQfinish(d->pg);
	d->pg = NULL;
	d->retry_at = loop_now_ms() + LISTENER_DB_RETRY_MS;
	d->failed_at = atomic_load(&l->db_connects);
	return -1;
}

/* A free connection slot, locked: the first idle one, else this thread's own (waiting for it). */
static struct listener_pg *
listener_db_take(struct listener *l)
{
	size_t i, mine = ((size_t)pthread_self() >> 12) % LISTENER_THREADS; /* thread ids are page-aligned */

	for (i = 0; i < LISTENER_THREADS; i++) {
		struct listener_pg *d = &l->db[(mine + i) % LISTENER_THREADS];

		if (pthread_mutex_trylock(&d->mtx) == 0)
			return d;
	}
	pthread_mutex_lock(&l->db[mine].mtx);
	return &l->db[mine];
}

/* Wait for the answer to what was sent, at most LISTENER_DB_TIMEOUT_MS; cancel it after that. */
static enum listener_db_rc
listener_db_wait(PGconn *pg, char *err, size_t errlen)
{
	long long deadline = loop_now_ms() + LISTENER_DB_TIMEOUT_MS;

	for (;;) {
		struct pollfd pfd = { PQsocket(pg), POLLIN, 0 };
		long long left;

		if (!PQconsumeInput(pg)) {
			snprintf(
			    err, errlen, "database connection lost: %.*s", LISTENER_LINE(PQerrorMessage(pg)));
			return LISTENER_DB_BROKEN;
		}
		if (!PQisBusy(pg))
			return LISTENER_DB_OK;
		if ((left = deadline - loop_now_ms()) <= 0) {
			PGcancel *cancel = PQgetCancel(pg);
			char cerr[256];

			if (cancel != NULL) {
				PQcancel(cancel, cerr, sizeof(cerr));
				PQfreeCancel(cancel);
			}
			snprintf(err, errlen, "database did not answer within %d ms", LISTENER_DB_TIMEOUT_MS);
			return LISTENER_DB_TIMEOUT;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", strerror(errno));
			return LISTENER_DB_BROKEN;
		}
	}
}

/* Send one statement and collect its result. Under its slot's lock, with a connection. */
static enum listener_db_rc
listener_db_run(
    PGconn *pg, const char *sql, int n, const char *const *v, PGresult **out, char *err, size_t errlen)
{
	enum listener_db_rc rc;
	PGresult *res;

	*out = NULL;
	if (!PQsendQueryParams(pg, sql, n, NULL, v, NULL, NULL, 0)) {
		snprintf(err, errlen, "database connection lost: %.*s", LISTENER_LINE(PQerrorMessage(pg)));
		return LISTENER_DB_BROKEN;
	}
	if ((rc = listener_db_wait(pg, err, errlen)) != LISTENER_DB_OK)
		return rc;
	while ((res = PQgetResult(pg)) != NULL) {
		if (*out == NULL)
			*out = res;
		else
			PQclear(res);
	}
	if (*out != NULL &&
	    (PQresultStatus(*out) == PGRES_TUPLES_OK || PQresultStatus(*out) == PGRES_COMMAND_OK))
		return LISTENER_DB_OK;
	snprintf(
	    err, errlen, "database: %.*s", LISTENER_LINE(*out ? PQresultErrorMessage(*out) : "no result"));
	PQclear(*out);
	*out = NULL;
	return PQstatus(pg) == CONNECTION_BAD ? LISTENER_DB_BROKEN : LISTENER_DB_SQL;
}

/*
 * Run sql with text parameters on one of the listener's own connections (listener_db_take): connect when
 * needed, wait at most LISTENER_DB_TIMEOUT_MS, drop a connection that broke or timed out, and try once
 * more on a fresh connection when it broke (every statement here is idempotent). The result, or NULL
 * with the reason in err (the caller answers 503). The caller PQclears.
 */
static PGresult *
listener_db(struct listener *l, const char *sql, int n, const char *const *v, char *err, size_t errlen)
{
	enum listener_db_rc rc = LISTENER_DB_BROKEN;
	struct listener_pg *d = listener_db_take(l);
	PGresult *res = NULL;
	int attempt;

	for (attempt = 0; attempt < 2 && rc == LISTENER_DB_BROKEN; attempt++) {
		if (listener_db_connect(l, d, err, errlen) == -1)
			break;
		rc = listener_db_run(d->pg, sql, n, v, &res, err, errlen);
		if (rc == LISTENER_DB_BROKEN || rc == LISTENER_DB_TIMEOUT) {
			PQfinish(d->pg);
			d->pg = NULL;
		}
	}
	pthread_mutex_unlock(&d->mtx);
	return res;
}

/* ---- handlers ---- */

/* A line of operator-given text for a text/plain answer: control characters become spaces. */
static void
listener_flatten(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* 200 while the database answers; then one line per condition an operator must know. */
static void
listener_health(struct listener *l, struct listener_reply *rep)
{
	static const char sql[] =
	    "SELECT to_char(paused_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), paused_by,"
	    " coalesce(pause_reason, 'no reason given') FROM payremind.control WHERE paused_at IS NOT NULL";
	char err[256], paused[200] = "", circuit[80] = "", reason[101], by[41];
	PGresult *res = listener_db(l, sql, 0, NULL, err, sizeof(err));
	double since;
	time_t t;
	struct tm tm;

	if (res == NULL) {
		log_warnx("listener: /healthz: %s", err);
		listener_text(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return;
	}
	if (PQntuples(res) == 1) {
		snprintf(reason, sizeof(reason), "%s", PQgetvalue(res, 0, 2));
		snprintf(by, sizeof(by), "%s", PQgetvalue(res, 0, 1));
		listener_flatten(reason);
		listener_flatten(by);
		snprintf(paused, sizeof(paused), "sending paused since %s by %s: %s\n", PQgetvalue(res, 0, 0),
		    by, reason);
	}
	PQclear(res);
	if (metrics_circuit(&since) != 0) {
		t = (time_t)since;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(
			    circuit, sizeof(circuit), "gateway circuit open since %Y-%m-%dT%H:%M:%SZ\n", &tm);
	}
	listener_text(rep, MHD_HTTP_OK, "ok\n%s%s", paused, circuit);
}

static const char *const listener_reminder_states[] = { "queued", "sending", "sent", "delivered", "failed",
	"expired", "cancelled", "unknown" };
static const char *const listener_reply_states[] = { "queued", "sending", "sent", "delivered", "failed",
	"unknown" };
static const char *const listener_opt_out_sources[] = { "keyword", "operator", "gateway" };
static const char *const listener_oldest[] = { "oldest" };
static const char *const listener_paused[] = { "paused" };

/* The rows of res whose first column is family, as values for keys (0 for a key with no row). */
static void
listener_gauge_values(
    const PGresult *res, const char *family, const char *const *keys, long long *values, size_t n)
{
	int i;
	size_t k;

	memset(values, 0, n * sizeof(*values));
	for (i = 0; i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), family) != 0)
			continue;
		for (k = 0; k < n; k++) {
			if (strcmp(PQgetvalue(res, i, 1), keys[k]) == 0)
				values[k] = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		}
	}
}

/* Queue depth and opt-outs as the database has them now. 0, or -1 on a write error. */
static int
listener_db_gauges(FILE *fp, const PGresult *res)
{
	long long v[8];

	listener_gauge_values(
	    res, "reminders", listener_reminder_states, v, LISTENER_NELEM(listener_reminder_states));
	if (metrics_write_gauge(fp, "payremind_reminders", "Reminders in the database by state.", "state",
	        listener_reminder_states, v, LISTENER_NELEM(listener_reminder_states)) == -1)
		return -1;
	listener_gauge_values(
	    res, "replies", listener_reply_states, v, LISTENER_NELEM(listener_reply_states));
	if (metrics_write_gauge(fp, "payremind_replies", "Keyword replies in the database by state.", "state",
	        listener_reply_states, v, LISTENER_NELEM(listener_reply_states)) == -1)
		return -1;
	listener_gauge_values(
	    res, "opt_outs", listener_opt_out_sources, v, LISTENER_NELEM(listener_opt_out_sources));
	if (metrics_write_gauge(fp, "payremind_opt_outs", "Numbers opted out, by source.", "source",
	        listener_opt_out_sources, v, LISTENER_NELEM(listener_opt_out_sources)) == -1)
		return -1;
	listener_gauge_values(res, "queue", listener_oldest, v, 1);
	fprintf(fp,
	    "# HELP payremind_oldest_queued_seconds How long the queued reminder that has waited longest since "
	    "it could go has waited (0: none).\n"
	    "# TYPE payremind_oldest_queued_seconds gauge\npayremind_oldest_queued_seconds %lld\n",
	    v[0]);
	listener_gauge_values(res, "control", listener_paused, v, 1);
	fprintf(fp,
	    "# HELP payremind_paused 1 while an operator has paused sending (payremindctl pause).\n"
	    "# TYPE payremind_paused gauge\npayremind_paused %d\n"
	    "# HELP payremind_paused_since_seconds Unix time sending was paused (0: not paused).\n"
	    "# TYPE payremind_paused_since_seconds gauge\npayremind_paused_since_seconds %lld\n",
	    v[0] != 0, v[0]);
	return ferror(fp) ? -1 : 0;
}

static void
listener_metrics(struct listener *l, struct listener_reply *rep)
{
	static const char sql[] =
	    "SELECT 'reminders', state, count(*) FROM payremind.reminders GROUP BY state"
	    " UNION ALL SELECT 'replies', state, count(*) FROM payremind.replies GROUP BY state"
	    " UNION ALL SELECT 'opt_outs', source, count(*) FROM payremind.opt_outs GROUP BY source"
	    /* a queued reminder is ready once its retry time and its due row's next look have come (a
	     * closed window moves the latter): how long the longest-waiting one has waited */
	    " UNION ALL SELECT 'queue', 'oldest', coalesce(floor(extract(epoch FROM now() -"
	    "   min(greatest(r.next_attempt_at, d.next_at)))), 0)::bigint"
	    "  FROM payremind.reminders r JOIN payremind.due_accounts d ON d.id = r.due_account_id"
	    " WHERE r.state = 'queued' AND r.next_attempt_at <= now() AND d.next_at <= now()"
	    "   AND d.next_step = r.step"
	    " UNION ALL SELECT 'control', 'paused', coalesce(floor(extract(epoch FROM paused_at)), 0)::bigint"
	    "  FROM payremind.control";
	char err[256];
	PGresult *res = listener_db(l, sql, 0, NULL, err, sizeof(err));
	size_t len = 0;
	FILE *fp = open_memstream(&rep->heap, &len);
	int rc;

	if (res == NULL)
		log_warnx("listener: /metrics: %s", err);
	if (fp == NULL)
		fatal("listener: open_memstream");
	rc = metrics_write(fp);
	if (rc == 0 && res != NULL)
		rc = listener_db_gauges(fp, res);
	fprintf(fp,
	    "# HELP payremind_database_up 1 when the listener could query the database for this scrape.\n"
	    "# TYPE payremind_database_up gauge\npayremind_database_up %d\n",
	    res != NULL);
	if (fclose(fp) != 0 || rc == -1)
		fatalx("listener: cannot render metrics");
	PQclear(res);
	rep->status = MHD_HTTP_OK;
	rep->type = "text/plain; version=0.0.4; charset=utf-8";
}

/* The key check of json and kannel routes, under conf_mtx. Never accepts when no key is configured. */
static int
listener_key_ok(struct listener *l, struct MHD_Connection *c, const struct listener_req *r, const char **why)
{
	const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Payremind-Key");
	int ok;

	pthread_mutex_lock(&l->conf_mtx);
	if (l->sec.key == NULL) {
		*why = "listen.secret_file is not set: unauthenticated webhooks are refused";
		ok = 0;
	} else {
		if (given == NULL && r->route->dialect == CONF_DIALECT_KANNEL)
			given = webhook_params_get(&r->params, "key");
		ok = webhook_key_equal(l->sec.key, given);
		*why = given == NULL ? "no X-Payremind-Key" : "wrong X-Payremind-Key";
	}
	pthread_mutex_unlock(&l->conf_mtx);
	return ok;
}

/* The Twilio signature over public_url + the request target + the form parameters, under conf_mtx. */
static int
listener_twilio_ok(
    struct listener *l, struct MHD_Connection *c, const struct listener_req *r, const char **why)
{
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Twilio-Signature");
	char *url = NULL;
	int ok = 0;

	pthread_mutex_lock(&l->conf_mtx);
	if (l->sec.twilio_token == NULL)
		*why = "Twilio webhooks need gateway.dialect \"twilio\" and its auth token in "
		       "gateway.secret_file";
	else if (sig == NULL)
		*why = "no X-Twilio-Signature";
	else if (asprintf(&url, "%s%s", l->sec.public_url, r->uri) < 0)
		*why = "out of memory";
	else if (!(ok = webhook_twilio_valid(l->sec.twilio_token, url, &r->params, sig)))
		*why = "bad X-Twilio-Signature (is listen.public_url the URL Twilio calls?)";
	pthread_mutex_unlock(&l->conf_mtx);
	free(url);
	return ok;
}

/* Record an inbound message (and act on its keyword) in one call. -1 with err when the database failed. */
static int
listener_inbound_record(struct listener *l, enum conf_dialect d, const struct webhook_inbound *in,
    const char *text, const struct keyword_match *m, int *duplicate, char *err, size_t errlen)
{
	static const char sql[] =
	    "SELECT duplicate FROM payremind.inbound_record($1, $2, $3, $4, $5, $6, $7, $8, $9)";
	const char *v[9] = { conf_dialect_to_text(d), in->id, in->from, in->to, text, keyword_name(m->index),
		keyword_action_to_text(m->action), keyword_lang_to_text(m->lang),
		keyword_reply(m->action, m->lang) };
	PGresult *res = listener_db(l, sql, 9, v, err, errlen);

	if (res == NULL)
		return -1;
	*duplicate = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

/* Replies from phones: record, act on a keyword, queue the reply; a replay changes nothing. */
static void
listener_inbound(
    struct listener *l, const struct route *rt, struct listener_req *r, struct listener_reply *rep)
{
	struct webhook_inbound in;
	struct keyword_match m;
	char err[256], masked[24], shown_id[24], shown_to[24];
	int duplicate = 0;

	if (webhook_inbound_parse(rt->dialect, &r->params, &in, err, sizeof(err)) == -1) {
		log_notice("listener: %s: 400 %s client=%s", rt->path, err, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	if (!conf_sender_allowed(in.to)) {
		log_warnx(
		    "listener: %s: REFUSED inbound id=%s to short code %s client=%s: not 27022 or 270282, "
		    "no reply can go out from it (check the gateway's routing)",
		    rt->path, webhook_log_value(in.id, shown_id, sizeof(shown_id)),
		    webhook_log_value(in.to, shown_to, sizeof(shown_to)), r->client);
		listener_text(
		    rep, MHD_HTTP_BAD_REQUEST, "field to: not one of our short codes (27022, 270282)");
		return;
	}
	keyword_match(in.text, &m);
	if (listener_inbound_record(l, rt->dialect, &in, in.text, &m, &duplicate, err, sizeof(err)) == -1) {
		log_warnx("listener: %s: inbound id=%s not recorded: %s", rt->path,
		    webhook_log_value(in.id, shown_id, sizeof(shown_id)), err);
		listener_text(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return;
	}
	if (!duplicate)
		metrics_count_inbound(m.index);
	log_info("listener: inbound gateway=%s id=%s from=%s to=%s keyword=%s action=%s%s",
	    conf_dialect_to_text(rt->dialect), webhook_log_value(in.id, shown_id, sizeof(shown_id)),
	    log_mask_msisdn(in.from, masked, sizeof(masked)), in.to,
	    m.index >= 0 ? keyword_name(m.index) : "-", keyword_action_to_text(m.action),
	    duplicate ? " duplicate" : "");
	if (rt->dialect == CONF_DIALECT_TWILIO) {
		/* An empty TwiML answer: Twilio itself sends nothing back. */
		snprintf(rep->buf, sizeof(rep->buf), "%s", LISTENER_TWIML);
		rep->status = MHD_HTTP_OK;
		rep->type = "text/xml; charset=utf-8";
	} else if (rt->dialect == CONF_DIALECT_KANNEL) {
		listener_text(rep, MHD_HTTP_OK, "%s", ""); /* empty: Kannel has nothing to send back itself */
	} else {
		listener_text(rep, MHD_HTTP_OK, "%s", duplicate ? "duplicate" : "ok");
	}
}

/* Record a delivery report. The function's result text in out, or -1 with err. */
static int
listener_dlr_record(struct listener *l, enum conf_dialect d, const struct webhook_dlr *dlr, char *out,
    size_t outlen, char *err, size_t errlen)
{
	static const char sql[] = "SELECT payremind.dlr_record($1, $2, $3, $4, $5, $6, $7, $8)";
	const char *v[8] = { conf_dialect_to_text(d), dlr->ref, dlr->by_sid ? "true" : "false",
		dlr->gateway_id, webhook_dlr_status_to_text(dlr->status), dlr->raw_status, dlr->code,
		dlr->opt_out ? "true" : "false" };
	PGresult *res = listener_db(l, sql, 8, v, err, errlen);

	if (res == NULL)
		return -1;
	snprintf(out, outlen, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "unknown");
	PQclear(res);
	return 0;
}

/* Twilio's status callback URL names our reminder (?ref=<id>, see gateway_twilio.c): find it by that key,
 * the message sid staying the gateway's id. A callback without it is looked up by sid. -1 with err when
 * the query is malformed, not UTF-8 or repeats a parameter. */
static int
listener_twilio_ref(const struct listener_req *r, struct webhook_dlr *dlr, char *err, size_t errlen)
{
	struct webhook_params q = { 0 };
	const char *ref, *qs = strchr(r->uri, '?');
	int rc = 0;

	if (qs == NULL)
		return 0;
	if (webhook_form_parse(qs + 1, strlen(qs + 1), &q) == -1) {
		snprintf(err, errlen, "malformed query string");
		rc = -1;
	} else if (webhook_params_check(&q, err, errlen) == -1) {
		rc = -1;
	} else if ((ref = webhook_params_get(&q, "ref")) != NULL && webhook_is_uuid(ref) &&
	    strlen(ref) < sizeof(dlr->ref)) {
		snprintf(dlr->ref, sizeof(dlr->ref), "%s", ref);
		dlr->by_sid = 0;
	}
	webhook_params_free(&q);
	return rc;
}

/* Delivery reports: move the reminder (or reply) once; unknown references get 404 and change nothing. */
static void
listener_dlr(struct listener *l, const struct route *rt, struct listener_req *r, struct listener_reply *rep)
{
	struct webhook_dlr dlr;
	char err[256], result[32] = "unknown", shown_ref[24], shown_code[24];

	if (webhook_dlr_parse(rt->dialect, &r->params, &dlr, err, sizeof(err)) == -1 ||
	    (rt->dialect == CONF_DIALECT_TWILIO && listener_twilio_ref(r, &dlr, err, sizeof(err)) == -1)) {
		log_notice("listener: %s: 400 %s client=%s", rt->path, err, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	if ((dlr.by_sid || webhook_is_uuid(dlr.ref)) &&
	    listener_dlr_record(l, rt->dialect, &dlr, result, sizeof(result), err, sizeof(err)) == -1) {
		log_warnx("listener: %s: dlr ref=%s not recorded: %s", rt->path,
		    webhook_log_value(dlr.ref, shown_ref, sizeof(shown_ref)), err);
		listener_text(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return;
	}
	log_info("listener: dlr gateway=%s ref=%s status=%s raw=%s%s%s result=%s%s",
	    conf_dialect_to_text(rt->dialect), webhook_log_value(dlr.ref, shown_ref, sizeof(shown_ref)),
	    webhook_dlr_status_to_text(dlr.status), dlr.raw_status, dlr.code[0] ? " code=" : "",
	    webhook_log_value(dlr.code, shown_code, sizeof(shown_code)), result,
	    dlr.opt_out ? " opt_out" : "");
	if (strcmp(result, "unknown") == 0) {
		listener_text(rep, MHD_HTTP_NOT_FOUND, "unknown reference");
		return;
	}
	if (strcmp(result, "duplicate") != 0)
		metrics_count_dlr(dlr.status);
	listener_text(rep, MHD_HTTP_OK, "%s", result);
}

/* ---- the payment page and the portal's results (SPEC §10) ---- */

static int listener_body(const struct listener_req *r, struct webhook_params *p, char *err, size_t errlen);

/* What link_open and link_checkout answer, with the due date as a day number. */
#define LISTENER_LINK_COLS \
	"view, reminder_id, language, account_ref, amount_cents, currency, due_date - DATE '1970-01-01'"

/* ?lang=fr|en on the page's URL, else NULL (anything else in the query is ignored). */
static const char *
listener_page_lang(const struct listener_req *r)
{
	struct webhook_params q = { 0 };
	const char *qs = strchr(r->uri, '?'), *v, *lang = NULL;

	if (qs != NULL && webhook_form_parse(qs + 1, strlen(qs + 1), &q) == 0 &&
	    (v = webhook_params_get(&q, "lang")) != NULL)
		lang = strcmp(v, "fr") == 0 ? "fr" : strcmp(v, "en") == 0 ? "en" : NULL;
	webhook_params_free(&q);
	return lang;
}

static enum paypage_view
listener_view(const char *view)
{
	if (strcmp(view, "valid") == 0)
		return PAYPAGE_VALID;
	if (strcmp(view, "spent") == 0)
		return PAYPAGE_SPENT;
	return strcmp(view, "nothing") == 0 ? PAYPAGE_NOTHING : PAYPAGE_UNKNOWN;
}

/* Count one GET of a link (written by the sweeper within LISTENER_OPENS_MS): a page view itself writes
 * nothing to the database. */
static void
listener_count_open(struct listener *l, const char *token)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	struct listener_open *o;
	struct timespec now;
	size_t i;

	SHA256((const unsigned char *)token, strlen(token), md);
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&l->opens_mtx);
	if (l->nopens == l->capopens && l->capopens < LISTENER_OPENS_MAX) {
		size_t cap = l->capopens ? l->capopens * 2 : 256;

		if ((o = realloc(l->opens, cap * sizeof(*o))) == NULL)
			fatal("listener: out of memory");
		l->opens = o;
		l->capopens = cap;
	}
	if (l->nopens < l->capopens) {
		o = &l->opens[l->nopens++];
		for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
			snprintf(o->hash + 2 * i, 3, "%02x", md[i]);
		o->at = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	} else
		l->opens_dropped++;
	pthread_mutex_unlock(&l->opens_mtx);
}

/* Write the openings counted since the last call, in one statement. Not under conn_mtx. */
static void
listener_write_opens(struct listener *l)
{
	struct listener_open *opens;
	char *hashes = NULL, *ats = NULL, err[256];
	size_t n, i, hlen = 0, alen = 0;
	unsigned long dropped;
	const char *v[2];
	PGresult *res;
	FILE *h, *a;

	pthread_mutex_lock(&l->opens_mtx);
	opens = l->opens;
	n = l->nopens;
	dropped = l->opens_dropped;
	l->opens = NULL;
	l->nopens = l->capopens = 0;
	l->opens_dropped = 0;
	pthread_mutex_unlock(&l->opens_mtx);
	if (dropped > 0)
		log_warnx("listener: %lu link openings not counted (over %u a second)", dropped,
		    LISTENER_OPENS_MAX);
	if (n > 0) {
		if ((h = open_memstream(&hashes, &hlen)) == NULL || (a = open_memstream(&ats, &alen)) == NULL)
			fatal("listener: open_memstream");
		for (i = 0; i < n; i++) {
			fprintf(h, "%c%s", i ? ',' : '{', opens[i].hash);
			fprintf(a, "%c%.3f", i ? ',' : '{', opens[i].at);
		}
		fputc('}', h);
		fputc('}', a);
		if (fclose(h) != 0 || fclose(a) != 0)
			fatal("listener: openings");
		v[0] = hashes;
		v[1] = ats;
		res = listener_db(
		    l, "SELECT payremind.link_opened($1::text[], $2::float8[])", 2, v, err, sizeof(err));

		if (res == NULL)
			log_warnx("listener: %zu link openings not counted: %s", n, err);
		PQclear(res);
	}
	free(hashes);
	free(ats);
	free(opens);
}

/* The page for view into rep; res is the link's row (NULL for an unknown link). */
static void
listener_page_render(struct listener *l, enum paypage_view view, const char *lang, const PGresult *res,
    struct listener_reply *rep)
{
	struct paypage_row row = { "", 0, "CAD", 0 };
	struct paypage_conf pc;
	struct html h;

	if (res != NULL) {
		row.account_ref = PQgetvalue(res, 0, 3);
		row.amount_cents = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		row.currency = PQgetvalue(res, 0, 5);
		row.due_date = (int32_t)strtol(PQgetvalue(res, 0, 6), NULL, 10);
	}
	html_init(&h);
	pthread_mutex_lock(&l->conf_mtx);
	pc = (struct paypage_conf){ l->sec.bank_payee, l->sec.mail_address, l->sec.permit,
		l->sec.checkout_url != NULL && l->sec.checkout_key != NULL };
	rep->status = (unsigned)paypage_render(view, lang, &row, &pc, &h);
	pthread_mutex_unlock(&l->conf_mtx);
	if (h.failed || (rep->heap = strdup(html_str(&h))) == NULL)
		fatal("listener: out of memory");
	html_free(&h);
	rep->type = "text/html; charset=utf-8";
	rep->page = 1;
}

/* The link was just spent by its button: 303 to the portal with the signed hand-off. */
static void
listener_handoff(struct listener *l, const struct listener_req *r, const PGresult *res, const char *lang,
    struct listener_reply *rep)
{
	struct checkout_handoff h = { PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3),
		strtoll(PQgetvalue(res, 0, 4), NULL, 10), PQgetvalue(res, 0, 5), lang, 0 };
	char url[4096];
	int rc = -1;

	pthread_mutex_lock(&l->conf_mtx);
	h.expires = (int64_t)time(NULL) + l->sec.checkout_ttl_s;
	if (l->sec.checkout_url != NULL && l->sec.checkout_key != NULL)
		rc = checkout_url(l->sec.checkout_url, (const unsigned char *)l->sec.checkout_key,
		    strlen(l->sec.checkout_key), &h, url, sizeof(url));
	pthread_mutex_unlock(&l->conf_mtx);
	if (rc == -1 || (rep->location = strdup(url)) == NULL) {
		log_warnx("listener: checkout reminder=%s: the hand-off could not be signed (checkout.url, "
		          "checkout.secret_file)",
		    h.reference);
		listener_text(
		    rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "online payment unavailable: please pay by phone");
		return;
	}
	explicit_bzero(url, sizeof(url));
	metrics_count_checkout();
	log_info("listener: checkout reminder=%s client=%s", h.reference, r->client);
	listener_text(rep, MHD_HTTP_SEE_OTHER, "%s", "");
	rep->page = 1;
}

/*
 * GET and HEAD show what the link leads to and never spend it (previews and scanners fetch links); a GET
 * records the opening. POST spends it exactly once and hands the person to the portal; a link that
 * cannot be spent any more answers its page. The token is never logged.
 */
static void
listener_page(struct listener *l, struct listener_req *r, struct listener_reply *rep)
{
	static const char sql_open[] = "SELECT " LISTENER_LINK_COLS " FROM payremind.link_open($1)";
	static const char sql_checkout[] = "SELECT " LISTENER_LINK_COLS " FROM payremind.link_checkout($1)";
	int post = strcmp(r->method, "POST") == 0, online;
	const char *lang = listener_page_lang(r), *v[1] = { r->token };
	PGresult *res = NULL;
	char err[256];

	pthread_mutex_lock(&l->conf_mtx);
	online = l->sec.checkout_url != NULL && l->sec.checkout_key != NULL;
	pthread_mutex_unlock(&l->conf_mtx);
	if (r->token[0] != '\0') {
		res = listener_db(l, post && online ? sql_checkout : sql_open, 1, v, err, sizeof(err));
		if (res == NULL) {
			log_warnx("listener: payment page: %s", err);
			listener_text(rep, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "temporarily unavailable: please try again later");
			return;
		}
		if (PQntuples(res) != 1) {
			PQclear(res);
			res = NULL;
		} else if (strcmp(r->method, "GET") == 0)
			listener_count_open(l, r->token);
	}
	if (lang == NULL)
		lang = res != NULL ? PQgetvalue(res, 0, 2) : "fr";
	if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "checkout") == 0)
		listener_handoff(l, r, res, lang, rep);
	else {
		enum paypage_view view = res != NULL ? listener_view(PQgetvalue(res, 0, 0)) : PAYPAGE_UNKNOWN;

		listener_page_render(l, view, lang, res, rep);
		if (!post)
			metrics_count_page((int)view);
	}
	PQclear(res);
}

/* The portal's result for one payment, signed with the shared key; a repeated id changes nothing. */
static void
listener_payment(
    struct listener *l, struct MHD_Connection *c, struct listener_req *r, struct listener_reply *rep)
{
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Payremind-Signature");
	char err[256], amount[24], shown_id[24];
	struct webhook_payment pay;
	const char *v[4] = { pay.id, pay.reference, pay.status, amount }, *result;
	PGresult *res;
	int ok;

	pthread_mutex_lock(&l->conf_mtx);
	ok = l->sec.checkout_key != NULL &&
	    checkout_verify((const unsigned char *)l->sec.checkout_key, strlen(l->sec.checkout_key),
	        r->body != NULL ? r->body : "", r->len, sig);
	pthread_mutex_unlock(&l->conf_mtx);
	if (!ok) {
		log_notice("listener: /v1/payments/json: 401 %s client=%s",
		    sig == NULL ? "no X-Payremind-Signature" : "wrong X-Payremind-Signature", r->client);
		listener_text(rep, MHD_HTTP_UNAUTHORIZED, "missing or wrong X-Payremind-Signature");
		return;
	}
	if (listener_body(r, &r->params, err, sizeof(err)) == -1 ||
	    webhook_payment_parse(&r->params, &pay, err, sizeof(err)) == -1) {
		log_notice("listener: /v1/payments/json: 400 %s client=%s", err, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	snprintf(amount, sizeof(amount), "%lld", pay.amount_cents);
	if ((res = listener_db(l, "SELECT payremind.payment_record($1, $2::uuid, $3, $4::bigint)", 4, v, err,
	         sizeof(err))) == NULL) {
		log_warnx("listener: /v1/payments/json: id=%s not recorded: %s",
		    webhook_log_value(pay.id, shown_id, sizeof(shown_id)), err);
		listener_text(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return;
	}
	result = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "unknown";
	log_info("listener: payment id=%s reminder=%s status=%s result=%s",
	    webhook_log_value(pay.id, shown_id, sizeof(shown_id)), pay.reference, pay.status, result);
	if (strcmp(result, "unknown") == 0)
		listener_text(rep, MHD_HTTP_NOT_FOUND, "unknown reference");
	else if (strcmp(result, "repeat") == 0)
		listener_text(rep, MHD_HTTP_OK, "duplicate");
	else {
		metrics_count_payment(pay.status);
		listener_text(rep, MHD_HTTP_OK, "recorded");
	}
	PQclear(res);
}

/* ---- HTTP plumbing ---- */

static void
listener_queue(struct MHD_Connection *c, struct listener_reply *rep)
{
	const char *body = rep->heap ? rep->heap : rep->buf;
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);

	free(rep->heap);
	rep->heap = NULL;
	if (resp == NULL) {
		free(rep->location);
		return; /* out of memory: libmicrohttpd closes the connection */
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rep->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
	for (int i = 0; rep->page && paypage_headers[i][0] != NULL; i++)
		if (strcmp(paypage_headers[i][0], "Content-Type") != 0 &&
		    strcmp(paypage_headers[i][0], "Cache-Control") != 0)
			MHD_add_response_header(resp, paypage_headers[i][0], paypage_headers[i][1]);
	if (rep->location != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rep->location);
	free(rep->location);
	rep->location = NULL;
	if (MHD_queue_response(c, rep->status, resp) == MHD_YES)
		metrics_count_response(rep->status);
	MHD_destroy_response(resp);
}

/* The query string of the request target, decoded into r->params. -1 when malformed. */
static int
listener_query(struct listener_req *r)
{
	const char *q = strchr(r->uri, '?');

	return q == NULL ? 0 : webhook_form_parse(q + 1, strlen(q + 1), &r->params);
}

/* ---- clients: per-address counts, deadlines, X-Forwarded-For ---- */

/* The canonical text of a peer's address ("?" for a family that has none). */
static void
listener_addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	char tmp[WEBHOOK_ADDR_MAX] = "?";

	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(
		    AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, tmp, sizeof(tmp));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(
		    AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, tmp, sizeof(tmp));
	if (webhook_addr_canonical(tmp, out, len) == -1)
		snprintf(out, len, "%s", tmp);
}

static int
listener_is_trusted(const struct listener *l, const char *addr)
{
	size_t i;

	for (i = 0; i < l->ntrusted; i++) {
		if (strcmp(l->trusted[i], addr) == 0)
			return 1;
	}
	return 0;
}

/* The count of addr (created when create), under conn_mtx. NULL when absent and not created. */
static struct listener_count *
listener_count_find(struct listener *l, const char *addr, int create)
{
	unsigned h = 2166136261u;
	struct listener_count *c;
	const char *p;

	for (p = addr; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h %= LISTENER_COUNT_BUCKETS;
	for (c = l->counts[h]; c != NULL; c = c->next) {
		if (strcmp(c->addr, addr) == 0)
			return c;
	}
	if (!create)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("listener: out of memory");
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->next = l->counts[h];
	l->counts[h] = c;
	return c;
}

static unsigned
listener_count_get(struct listener *l, const char *addr)
{
	const struct listener_count *c = listener_count_find(l, addr, 0);

	return c != NULL ? c->n : 0;
}

/* One more or one less for addr, under conn_mtx; a count back at 0 is freed. */
static void
listener_count_add(struct listener *l, const char *addr, int delta)
{
	struct listener_count *c = listener_count_find(l, addr, delta > 0), **pp;
	unsigned h;

	if (c == NULL)
		return;
	if (delta > 0 || c->n > 1) {
		c->n = delta > 0 ? c->n + 1 : c->n - 1;
		return;
	}
	for (h = 0; h < LISTENER_COUNT_BUCKETS; h++) {
		for (pp = &l->counts[h]; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == c) {
				*pp = c->next;
				free(c);
				return;
			}
		}
	}
}

/* Before libmicrohttpd takes a connection: refuse one more from an address that holds
 * LISTENER_PER_CLIENT already (a trusted proxy carries many clients: never refused here). */
static enum MHD_Result
listener_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct listener *l = cls;
	char peer[WEBHOOK_ADDR_MAX];
	int ok;

	(void)addrlen;
	listener_addr_text(addr, peer, sizeof(peer));
	if (listener_is_trusted(l, peer))
		return MHD_YES;
	pthread_mutex_lock(&l->conn_mtx);
	ok = listener_count_get(l, peer) < LISTENER_PER_CLIENT;
	if (!ok)
		l->refused++;
	pthread_mutex_unlock(&l->conn_mtx);
	return ok ? MHD_YES : MHD_NO;
}

/* A connection begins: count it against its address, and give its first request a deadline. */
static void
listener_conn_started(struct listener *l, struct MHD_Connection *c, void **socket_context)
{
	const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ad = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct listener_conn *e;

	if (fd == NULL || ad == NULL || (e = calloc(1, sizeof(*e))) == NULL)
		return; /* untracked: not counted, no deadline (libmicrohttpd's idle timeout still applies) */
	e->fd = fd->connect_fd;
	listener_addr_text(ad->client_addr, e->peer, sizeof(e->peer));
	e->trusted = listener_is_trusted(l, e->peer);
	e->deadline = loop_now_ms() + LISTENER_DEADLINE_MS;
	pthread_mutex_lock(&l->conn_mtx);
	e->next = l->conns;
	if (l->conns != NULL)
		l->conns->prev = e;
	l->conns = e;
	listener_count_add(l, e->peer, 1);
	pthread_mutex_unlock(&l->conn_mtx);
	*socket_context = e;
}

/* libmicrohttpd's STARTED and CLOSED notifications; CLOSED comes before the socket is closed. */
static void
listener_conn_notify(
    void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	struct listener *l = cls;
	struct listener_conn *e = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		listener_conn_started(l, c, socket_context);
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || e == NULL)
		return;
	pthread_mutex_lock(&l->conn_mtx);
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		l->conns = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	listener_count_add(l, e->peer, -1);
	pthread_mutex_unlock(&l->conn_mtx);
	free(e);
	*socket_context = NULL;
}

static struct listener_conn *
listener_conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

enum listener_moment { LISTENER_REQUEST_LINE, LISTENER_REQUEST_IN, LISTENER_REQUEST_DONE };

/*
 * The deadline of the request on c at each moment of it. A client's next request on a kept-alive
 * connection is due LISTENER_DEADLINE_MS after the last one is done, so a connection cannot be held
 * idle or trickling for long. A trusted proxy keeps its idle upstream connections (libmicrohttpd's idle
 * timeout still applies) and its request is due LISTENER_DEADLINE_MS after its request line. Once the
 * whole request is in, there is no deadline: what is left is ours to do.
 */
static void
listener_deadline(struct listener *l, struct MHD_Connection *c, enum listener_moment at)
{
	struct listener_conn *e = listener_conn_of(c);

	if (e == NULL)
		return;
	pthread_mutex_lock(&l->conn_mtx);
	if (at == LISTENER_REQUEST_IN || (at == LISTENER_REQUEST_DONE && e->trusted))
		e->deadline = 0;
	else if (at == LISTENER_REQUEST_DONE || e->deadline == 0)
		e->deadline = loop_now_ms() + LISTENER_DEADLINE_MS;
	pthread_mutex_unlock(&l->conn_mtx);
}

/*
 * Who sent the request: the peer, or behind a trusted proxy the X-Forwarded-For client, who is then
 * held to LISTENER_PER_CLIENT requests at a time (the proxy's own connections are not). -1 when that
 * client is over its limit.
 */
static int
listener_client(struct listener *l, struct MHD_Connection *c, struct listener_req *r)
{
	const struct listener_conn *e = listener_conn_of(c);
	const char *xff;
	int over;

	if (e == NULL) {
		snprintf(r->client, sizeof(r->client), "?");
		return 0;
	}
	snprintf(r->client, sizeof(r->client), "%s", e->peer);
	if (!e->trusted)
		return 0;
	xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
	if (webhook_forwarded_client(e->peer, xff, l->trusted_v, l->ntrusted, r->client, sizeof(r->client)) ==
	    -1)
		log_notice("listener: malformed X-Forwarded-For from trusted proxy %s", e->peer);
	if (strcmp(r->client, e->peer) == 0)
		return 0;
	pthread_mutex_lock(&l->conn_mtx);
	over = listener_count_get(l, r->client) >= LISTENER_PER_CLIENT;
	if (!over) {
		listener_count_add(l, r->client, 1);
		r->counted = 1;
	} else {
		l->refused++;
	}
	pthread_mutex_unlock(&l->conn_mtx);
	return over ? -1 : 0;
}

/* Shut down every connection whose request is past its deadline, under conn_mtx: libmicrohttpd then
 * sees the end of the stream and closes it. */
static void
listener_sweep(struct listener *l)
{
	long long now = loop_now_ms();
	struct listener_conn *e;

	for (e = l->conns; e != NULL; e = e->next) {
		if (e->deadline == 0 || now < e->deadline)
			continue;
		shutdown(e->fd, SHUT_RDWR);
		e->deadline = 0;
		l->swept++;
	}
}

/* The sweeper thread: every LISTENER_SWEEP_MS, close late requests; now and then (and when the listener
 * stops), say what it and the per-client limits did. */
static void *
listener_sweeper(void *arg)
{
	struct listener *l = arg;

	pthread_mutex_lock(&l->conn_mtx);
	l->report_at = loop_now_ms() + LISTENER_REPORT_MS;
	while (!l->stopping) {
		struct timespec ts;
		unsigned long refused, swept;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += LISTENER_SWEEP_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&l->sweep_cv, &l->conn_mtx, &ts);
		listener_sweep(l);
		if (loop_now_ms() >= l->opens_at) {
			l->opens_at = loop_now_ms() + LISTENER_OPENS_MS;
			pthread_mutex_unlock(&l->conn_mtx);
			listener_write_opens(l);
			pthread_mutex_lock(&l->conn_mtx);
		}
		if ((loop_now_ms() < l->report_at && !l->stopping) || (l->refused == 0 && l->swept == 0))
			continue;
		refused = l->refused;
		swept = l->swept;
		l->refused = l->swept = 0;
		l->report_at = loop_now_ms() + LISTENER_REPORT_MS;
		pthread_mutex_unlock(&l->conn_mtx);
		log_warnx(
		    "listener: refused %lu connections or requests over %u per client address, closed %lu "
		    "whose request did not arrive within %d ms",
		    refused, LISTENER_PER_CLIENT, swept, LISTENER_DEADLINE_MS);
		pthread_mutex_lock(&l->conn_mtx);
	}
	pthread_mutex_unlock(&l->conn_mtx);
	return NULL;
}

/*
 * What can be decided from the request line and headers alone, before any body is read: route,
 * method, declared size, the client's share, the query's parameters and the webhook key. 0 to go on
 * reading, or -1 with the answer in rep.
 */
static int
listener_begin(struct listener *l, struct MHD_Connection *c, const char *method, struct listener_req *r,
    struct listener_reply *rep)
{
	const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *why = NULL;
	char err[256];

	enum route_result rr = route_match(method, strlen(method), r->uri, strlen(r->uri), &r->route);

	snprintf(r->method, sizeof(r->method), "%s", method);
	if (rr == ROUTE_NOT_FOUND) {
		pthread_mutex_lock(&l->conf_mtx);
		rr = route_page(
		    l->sec.page_path, method, strlen(method), r->uri, strlen(r->uri), r->token, &r->route);
		pthread_mutex_unlock(&l->conf_mtx);
	}
	switch (rr) {
	case ROUTE_OK:
		break;
	case ROUTE_METHOD_NOT_ALLOWED:
		listener_text(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed", method);
		rep->allow = r->route->allow;
		return -1;
	case ROUTE_NOT_FOUND:
		listener_text(rep, MHD_HTTP_NOT_FOUND, "not found");
		return -1;
	}
	if (listener_client(l, c, r) == -1) {
		listener_text(rep, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests from %s", r->client);
		return -1;
	}
	if (clen != NULL && strtoull(clen, NULL, 10) > LISTENER_BODY_MAX) {
		listener_text(rep, MHD_HTTP_CONTENT_TOO_LARGE, "body over %d bytes", LISTENER_BODY_MAX);
		return -1;
	}
	if (r->route->dialect == CONF_DIALECT_KANNEL && listener_query(r) == -1) {
		log_notice("listener: %s: 400 malformed query string client=%s", r->route->path, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "malformed query string");
		return -1;
	}
	if (webhook_params_check(&r->params, err, sizeof(err)) == -1) {
		log_notice("listener: %s: 400 %s client=%s", r->route->path, err, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return -1;
	}
	if (r->route->auth == ROUTE_AUTH_KEY && !listener_key_ok(l, c, r, &why)) {
		log_notice("listener: %s: 401 %s client=%s", r->route->path, why, r->client);
		listener_text(rep, MHD_HTTP_UNAUTHORIZED, "missing or wrong X-Payremind-Key");
		return -1;
	}
	return 0;
}

/* Parse the body of a json or twilio route into r->params and check them. 0, or -1 with err. */
static int
listener_body(const struct listener_req *r, struct webhook_params *p, char *err, size_t errlen)
{
	if (r->route->dialect == CONF_DIALECT_JSON &&
	    webhook_json_parse(r->body ? r->body : "", r->len, p, err, errlen) == -1)
		return -1;
	if (r->route->dialect == CONF_DIALECT_TWILIO &&
	    webhook_form_parse(r->body ? r->body : "", r->len, p) == -1) {
		snprintf(err, errlen, "malformed form body");
		return -1;
	}
	return webhook_params_check(p, err, errlen);
}

/* The whole request is in: parse the body, check a Twilio signature, run the route. */
static void
listener_finish(
    struct listener *l, struct listener_req *r, struct MHD_Connection *c, struct listener_reply *rep)
{
	const struct route *rt = r->route;
	const char *why;
	char err[256];

	if (r->too_big) {
		listener_text(rep, MHD_HTTP_CONTENT_TOO_LARGE, "body over %d bytes", LISTENER_BODY_MAX);
		return;
	}
	if (rt->kind == ROUTE_HEALTH || rt->kind == ROUTE_METRICS) {
		(rt->kind == ROUTE_HEALTH ? listener_health : listener_metrics)(l, rep);
		return;
	}
	if (rt->kind == ROUTE_PAGE) {
		listener_page(l, r, rep);
		return;
	}
	if (rt->kind == ROUTE_PAYMENT) {
		listener_payment(l, c, r, rep);
		return;
	}
	if (rt->dialect != CONF_DIALECT_KANNEL && listener_body(r, &r->params, err, sizeof(err)) == -1) {
		log_notice("listener: %s: 400 %s client=%s", rt->path, err, r->client);
		listener_text(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	if (rt->auth == ROUTE_AUTH_TWILIO && !listener_twilio_ok(l, c, r, &why)) {
		log_notice("listener: %s: 403 %s client=%s", rt->path, why, r->client);
		listener_text(rep, MHD_HTTP_FORBIDDEN, "bad or missing X-Twilio-Signature");
		return;
	}
	(rt->kind == ROUTE_INBOUND ? listener_inbound : listener_dlr)(l, rt, r, rep);
}

/* Keep up to LISTENER_BODY_MAX bytes of the body; past that, remember only that it was too big. */
static void
listener_append(struct listener_req *r, const char *data, size_t n)
{
	char *body;

	if (r->too_big || r->len + n > LISTENER_BODY_MAX) {
		r->too_big = 1;
		return;
	}
	if ((body = realloc(r->body, r->len + n + 1)) == NULL)
		fatal("listener: out of memory");
	memcpy(body + r->len, data, n);
	r->len += n;
	body[r->len] = '\0';
	r->body = body;
}

/*
 * 1 when the request target held a raw NUL byte. libmicrohttpd 0.9 hands its callbacks C strings cut out
 * of its read buffer, so such a target arrives silently shortened ("/v1/inbound/json\0x" would look like
 * "/v1/inbound/json"). In that buffer the target runs from url to the space before version, which it
 * made a NUL: when strlen of the target as recorded does not reach it, a NUL came first. When version
 * is not in the same buffer (no version at all), nothing can be told and 0 is returned.
 */
static int
listener_target_has_nul(const struct listener_req *r, const char *url, const char *version)
{
	size_t len;

	if (url == NULL || version == NULL || version[0] == '\0' || version <= url)
		return 0;
	len = (size_t)(version - url) - 1;
	if (len > LISTENER_CONN_MEMORY)
		return 0;
	return len != strlen(r->uri);
}

/* libmicrohttpd calls this for the headers, then per body chunk, then once with no data. */
static enum MHD_Result
listener_access(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct listener *l = cls;
	struct listener_req *r = *con_cls;
	struct listener_reply rep = { 0 };

	if (r == NULL)
		return MHD_NO; /* the request line could not be recorded (out of memory) */
	if (!r->started) {
		r->started = 1;
		/* url is decoded and cut at an escaped NUL: routing uses the target as received (r->uri) */
		if (listener_target_has_nul(r, url, version)) {
			r->answered = 1;
			listener_text(&rep, MHD_HTTP_BAD_REQUEST, "NUL byte in the request target");
			listener_queue(c, &rep);
		} else if (listener_begin(l, c, method, r, &rep) == -1) {
			r->answered = 1;
			listener_queue(c, &rep);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!r->answered)
			listener_append(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	listener_deadline(l, c, LISTENER_REQUEST_IN);
	if (r->answered)
		return MHD_YES;
	listener_finish(l, r, c, &rep);
	listener_queue(c, &rep);
	return MHD_YES;
}

/* First sight of a request: keep its raw target (libmicrohttpd hands the handler a decoded path only). */
static void *
listener_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct listener_req *r = calloc(1, sizeof(*r));

	listener_deadline(cls, c, LISTENER_REQUEST_LINE);
	if (r != NULL && (r->uri = strdup(uri)) == NULL) {
		free(r);
		r = NULL;
	}
	return r;
}

/* A request is over: release it, and start the clock for the next one on the connection (keep-alive). */
static void
listener_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct listener *l = cls;
	struct listener_req *r = *con_cls;

	(void)toe;
	listener_deadline(l, c, LISTENER_REQUEST_DONE);
	if (r == NULL)
		return;
	if (r->counted) {
		pthread_mutex_lock(&l->conn_mtx);
		listener_count_add(l, r->client, -1);
		pthread_mutex_unlock(&l->conn_mtx);
	}
	webhook_params_free(&r->params);
	free(r->body);
	free(r->uri);
	free(r);
	*con_cls = NULL;
}

/*
 * libmicrohttpd's complaints. Once serving, at most LISTENER_MHD_LOG_MAX per LISTENER_REPORT_MS: every
 * connection a slow client loses to the deadline makes one ("Connection socket is closed when reading
 * request..."), and a client must not be able to flood the journal that way.
 */
static void
listener_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct listener *l = cls;
	unsigned long dropped = 0;
	char msg[256];
	int show = 1;
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (l->starting) {
		snprintf(l->start_err, sizeof(l->start_err), "%s", msg);
	} else {
		long long now = loop_now_ms();

		pthread_mutex_lock(&l->mhdlog_mtx);
		if (now >= l->mhdlog_until) {
			dropped = l->mhdlog_dropped;
			l->mhdlog_dropped = 0;
			l->mhdlog_count = 0;
			l->mhdlog_until = now + LISTENER_REPORT_MS;
		}
		show = l->mhdlog_count++ < LISTENER_MHD_LOG_MAX;
		l->mhdlog_dropped += !show;
		pthread_mutex_unlock(&l->mhdlog_mtx);
	}
	if (dropped > 0)
		log_warnx("listener: %lu more libmicrohttpd messages were not logged", dropped);
	if (show)
		log_warnx("listener: %s", msg);
}

/* ---- lifecycle ---- */

/* Resolve listen.address:port (numeric or a name) for binding. */
static struct addrinfo *
listener_resolve(const struct conf *conf, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	char port[16];
	int rc;

	snprintf(port, sizeof(port), "%d", conf->listen.port);
	if ((rc = getaddrinfo(conf->listen.address, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listen.address %s: %s", conf->listen.address, gai_strerror(rc));
		return NULL;
	}
	return ai;
}

/*
 * Raise the soft limit on descriptors to the hard one (systemd and most shells start at 1024), and
 * take for connections what it leaves beside LISTENER_FD_RESERVE, at most LISTENER_MAX_CONNECTIONS.
 */
static unsigned
listener_connection_limit(void)
{
	struct rlimit rl;
	rlim_t cur;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return LISTENER_MAX_CONNECTIONS;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
		cur = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			rl.rlim_cur = cur;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= LISTENER_MAX_CONNECTIONS + LISTENER_FD_RESERVE)
		return LISTENER_MAX_CONNECTIONS;
	cur = rl.rlim_cur > 2 * LISTENER_FD_RESERVE ? rl.rlim_cur - LISTENER_FD_RESERVE : rl.rlim_cur / 2;
	log_notice("listener: RLIMIT_NOFILE is %llu: at most %llu connections (raise LimitNOFILE= for %u)",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)cur, LISTENER_MAX_CONNECTIONS);
	return (unsigned)cur;
}

static struct MHD_Daemon *
listener_mhd_create(struct listener *l, const struct addrinfo *ai, unsigned limit)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, 0, listener_accept, l, listener_access, l, MHD_OPTION_EXTERNAL_LOGGER,
	    listener_mhd_log, l, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    LISTENER_BACKLOG, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)LISTENER_CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, LISTENER_CONN_TIMEOUT_S,
	    MHD_OPTION_THREAD_POOL_SIZE, LISTENER_THREADS, MHD_OPTION_URI_LOG_CALLBACK, listener_uri, l,
	    MHD_OPTION_NOTIFY_COMPLETED, listener_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
	    listener_conn_notify, l, MHD_OPTION_END);
}

/*
 * The daemon takes its signals through the loop (signalfd): a thread that did not block them would
 * have SIGTERM or SIGHUP delivered to it and kill the process. So libmicrohttpd's threads and the
 * sweeper are created with every asynchronous signal blocked, whatever the caller's mask is then.
 */
static struct MHD_Daemon *
listener_mhd_start(struct listener *l, const struct addrinfo *ai, unsigned limit)
{
	static const int sync_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS };
	struct MHD_Daemon *mhd;
	sigset_t all, old;
	size_t i;

	sigfillset(&all);
	for (i = 0; i < LISTENER_NELEM(sync_signals); i++)
		sigdelset(&all, sync_signals[i]);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	mhd = listener_mhd_create(l, ai, limit);
	if (mhd != NULL && pthread_create(&l->sweeper, NULL, listener_sweeper, l) != 0)
		fatalx("listener: cannot start the sweeper thread");
	l->sweeper_running = mhd != NULL;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return mhd;
}

static struct listener *
listener_new(const struct conf *conf)
{
	struct listener *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int i;

	if (l == NULL || (l->conninfo = strdup(conf->db_conninfo ? conf->db_conninfo : "")) == NULL)
		fatal("listener: out of memory");
	for (i = 0; i < (int)LISTENER_THREADS; i++)
		pthread_mutex_init(&l->db[i].mtx, NULL);
	pthread_mutex_init(&l->opens_mtx, NULL);
	pthread_mutex_init(&l->conf_mtx, NULL);
	pthread_mutex_init(&l->conn_mtx, NULL);
	pthread_mutex_init(&l->mhdlog_mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->sweep_cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < conf->listen.ntrusted_proxies && i < CONF_MAX_TRUSTED_PROXIES; i++) {
		snprintf(l->trusted[i], sizeof(l->trusted[i]), "%s", conf->listen.trusted_proxies[i]);
		l->trusted_v[i] = l->trusted[i];
	}
	l->ntrusted = (size_t)i;
	listener_secrets_from(&l->sec, conf);
	return l;
}

struct listener *
listener_start(const struct conf *conf, char *err, size_t errlen)
{
	struct listener *l = listener_new(conf);
	struct addrinfo *ai;
	char dberr[256];

	if (conf->listen.port == 0) {
		log_info("listener: off (listen.port = 0)");
		return l;
	}
	if ((ai = listener_resolve(conf, err, errlen)) == NULL) {
		listener_stop(l);
		return NULL;
	}
	l->starting = 1;
	l->mhd = listener_mhd_start(l, ai, listener_connection_limit());
	l->starting = 0;
	freeaddrinfo(ai);
	if (l->mhd == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", conf->listen.address, conf->listen.port,
		    l->start_err[0] ? l->start_err : "libmicrohttpd could not start");
		listener_stop(l);
		return NULL;
	}
	if (l->sec.key == NULL)
		log_notice("listener: listen.secret_file is not set: json and kannel webhooks will be "
		           "refused (401)");
	pthread_mutex_lock(&l->db[0].mtx);
	if (listener_db_connect(l, &l->db[0], dberr, sizeof(dberr)) == -1)
		log_warnx("listener: %s (retried on the next request)", dberr);
	pthread_mutex_unlock(&l->db[0].mtx);
	log_debug("listener: serving on %s:%d", conf->listen.address, conf->listen.port);
	return l;
}

/* Stop the sweeper, then libmicrohttpd (whose CLOSED notifications free every connection), then free. */
void
listener_stop(struct listener *l)
{
	struct listener_count *c;
	unsigned h;

	if (l == NULL)
		return;
	if (l->sweeper_running) {
		pthread_mutex_lock(&l->conn_mtx);
		l->stopping = 1;
		pthread_cond_signal(&l->sweep_cv);
		pthread_mutex_unlock(&l->conn_mtx);
		pthread_join(l->sweeper, NULL);
	}
	if (l->mhd != NULL)
		MHD_stop_daemon(l->mhd);
	listener_write_opens(l); /* the last second's */
	for (h = 0; h < LISTENER_COUNT_BUCKETS; h++) {
		while ((c = l->counts[h]) != NULL) {
			l->counts[h] = c->next;
			free(c);
		}
	}
	for (h = 0; h < LISTENER_THREADS; h++) {
		PQfinish(l->db[h].pg);
		pthread_mutex_destroy(&l->db[h].mtx);
	}
	pthread_mutex_destroy(&l->opens_mtx);
	listener_secrets_free(&l->sec);
	pthread_mutex_destroy(&l->conf_mtx);
	pthread_mutex_destroy(&l->conn_mtx);
	pthread_mutex_destroy(&l->mhdlog_mtx);
	pthread_cond_destroy(&l->sweep_cv);
	free(l->conninfo);
	free(l);
}
