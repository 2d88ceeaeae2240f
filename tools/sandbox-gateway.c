/* Sandbox SMS gateway (json dialect) for the demo, tests and benchmark: shows, records and answers each SMS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "payremind/gsm.h"
#include "payremind/log.h"

#define SBX_MAX_BODY (64 * 1024) /* a json-dialect SMS is well under 2 KiB; anything bigger is a client bug */
#define SBX_MAX_KEY 255
#define SBX_OUT_MAX 256
#define SBX_MAX_DELAY_MS 3600000u
#define SBX_DLR_QUEUE_MAX 100000

/* --rule MSISDN=STATUS[:DELAY_MS][*N]: the answer for requests to one number, for the first N (or every) request. */
struct sbx_rule {
	const char *msisdn; /* points into argv, not NUL-terminated at msisdn_len */
	size_t msisdn_len;
	unsigned int status;
	unsigned int delay_ms;
	long limit; /* -1: every request */
	long used;
};

/* Accepted Idempotency-Keys -> sequence number of the accepting request (open addressing, linear probing). */
struct idem_ent {
	uint64_t hash;
	char *key; /* NULL: empty slot */
	unsigned long seq;
};

struct idem {
	struct idem_ent *tab;
	size_t cap; /* 0 or a power of two */
	size_t n;
};

/* Suspended connections waiting for their delay, as a binary min-heap on the due time. */
struct timer_ent {
	uint64_t due_ms;
	struct MHD_Connection *conn;
};

struct timerq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	struct timer_ent *heap;
	size_t n, cap;
	int stopping;
};

/* Delivery reports waiting to be POSTed, FIFO (the delay is constant, so FIFO is due-time order). */
struct dlr_item {
	struct dlr_item *next;
	uint64_t due_ms;
	char id[32];
	char reference[]; /* NUL-terminated */
};

struct dlrq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thr;
	struct dlr_item *head, *tail;
	size_t n;
	unsigned long dropped;
	int stopping;
};

struct sbx_opts {
	const char *listen;
	unsigned int port;
	const char *port_file;
	const char *bearer;
	const char *record_path;
	const char *dlr_url;
	const char *dlr_key_file;
	const char *dlr_status;
	unsigned int dlr_delay_ms;
	double down_from;    /* tests: 503 to every request whose X-Payremind-Test-Clock is at or after it */
	double carrier_rate; /* the carrier's queue per sender code, in segments per second (0: none) */
	unsigned int threads;
	int quiet;
	int verbose;
};

struct sbx {
	struct sbx_opts opt;
	atomic_uint status; /* defaults, changed at run time by POST /_control */
	atomic_uint delay_ms;
	atomic_uint retry_after;
	atomic_uint delayed; /* requests suspended for a delay and not yet ended: drained before stopping */
	char *auth_expected; /* "Bearer TOKEN", or NULL when any request is welcome */
	char *dlr_key;       /* X-Payremind-Key for delivery reports, or NULL */

	int record_fd;          /* O_APPEND: one writev per line, so threads never interleave lines */
	pthread_mutex_t out_mu; /* stdout */

	struct timerq timers;
	struct dlrq dlr;
	int dlr_running;
	struct MHD_Daemon *daemon;

	pthread_mutex_t mu; /* guards the fields below */
	struct sbx_rule *rules;
	size_t nrules;
	struct idem idem;
	unsigned long seq;
	unsigned long received, accepted, duplicates, errors;
	double carrier_free[2]; /* when the carrier's queue of 27022, of 270282, is free (epoch s) */
};

/* Per-connection state, reused by every request of a kept-alive connection so requests allocate little. */
struct sbx_conn {
	char *body;
	size_t len, cap;
	int too_large;
	int pending; /* answer decided and connection suspended until its delay has passed */
	int delayed; /* this request was suspended and counts in sbx.delayed until it ends */
	unsigned int status;
	unsigned int retry_after;
	size_t outlen;
	char out[SBX_OUT_MAX]; /* response body, handed to MHD without a copy */
};

/* One SMS request as parsed and answered. The strings point into the request's JSON or MHD's header table. */
struct sms_req {
	const char *key, *from, *to, *text, *reference;
	const char *expires_at; /* optional: the end of the recipient's window, as sent */
	const char *clock;      /* X-Payremind-Test-Clock: the daemon's simulated instant (tests) */
	double released;        /* --carrier-rate: when the carrier releases it (0: not modelled) */
	int dropped;            /* --carrier-rate: its release would be after expires_at: dropped */
	unsigned int status;
	unsigned int delay_ms;
	unsigned long seq, id_seq;
	int duplicate;
	char error[128];
};

static uint64_t
now_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- idempotency table ---- */

static uint64_t
idem_hash(const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return h;
}

/* Sequence number of the request that accepted `key`, or 0 when the key was never accepted. */
static unsigned long
idem_find(const struct idem *t, const char *key, uint64_t h)
{
	size_t i;

	if (t->cap == 0)
		return 0;
	for (i = h & (t->cap - 1); t->tab[i].key != NULL; i = (i + 1) & (t->cap - 1))
		if (t->tab[i].hash == h && strcmp(t->tab[i].key, key) == 0)
			return t->tab[i].seq;
	return 0;
}

static void
idem_place(struct idem_ent *tab, size_t cap, struct idem_ent e)
{
	size_t i;

	for (i = e.hash & (cap - 1); tab[i].key != NULL; i = (i + 1) & (cap - 1))
		;
	tab[i] = e;
}

/* Double the table (kept at most half full so probes stay short); -1 on allocation failure. */
static int
idem_grow(struct idem *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024, i;
	struct idem_ent *tab = calloc(cap, sizeof(*tab));

	if (tab == NULL)
		return -1;
	for (i = 0; i < t->cap; i++)
		if (t->tab[i].key != NULL)
			idem_place(tab, cap, t->tab[i]);
	free(t->tab);
	t->tab = tab;
	t->cap = cap;
	return 0;
}

/* Remember an accepted key that idem_find() did not know; -1 on allocation failure. */
static int
idem_insert(struct idem *t, const char *key, uint64_t h, unsigned long seq)
{
	struct idem_ent e = { h, NULL, seq };

	if ((t->n + 1) * 2 > t->cap && idem_grow(t) == -1)
		return -1;
	if ((e.key = strdup(key)) == NULL)
		return -1;
	idem_place(t->tab, t->cap, e);
	t->n++;
	return 0;
}

static void
idem_clear(struct idem *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->tab[i].key);
	free(t->tab);
	memset(t, 0, sizeof(*t));
}

/* ---- rules ---- */

/* Parse MSISDN=STATUS[:DELAY_MS][*N] into `r` (MSISDN stays in `arg`); -1 with a reason on bad syntax. */
static int
rule_parse(const char *arg, struct sbx_rule *r, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char *end;
	unsigned long v;

	memset(r, 0, sizeof(*r));
	r->limit = -1;
	if (eq == NULL || eq == arg) {
		snprintf(err, errlen, "expected MSISDN=STATUS[:DELAY_MS][*N]");
		return -1;
	}
	r->msisdn = arg;
	r->msisdn_len = (size_t)(eq - arg);
	errno = 0;
	v = strtoul(eq + 1, &end, 10);
	if (errno != 0 || end == eq + 1 || v < 200 || v > 599) {
		snprintf(err, errlen, "STATUS must be an HTTP status 200..599");
		return -1;
	}
	r->status = (unsigned int)v;
	if (*end == ':') {
		const char *p = end + 1;

		v = strtoul(p, &end, 10);
		if (errno != 0 || end == p || v > SBX_MAX_DELAY_MS) {
			snprintf(err, errlen, "DELAY_MS must be 0..%u", SBX_MAX_DELAY_MS);
			return -1;
		}
		r->delay_ms = (unsigned int)v;
	}
	if (*end == '*') {
		const char *p = end + 1;

		v = strtoul(p, &end, 10);
		if (errno != 0 || end == p || v < 1 || v > 1000000000ul) {
			snprintf(err, errlen, "N in *N must be a positive count");
			return -1;
		}
		r->limit = (long)v;
	}
	if (*end != '\0') {
		snprintf(err, errlen, "unexpected \"%s\"", end);
		return -1;
	}
	return 0;
}

/* The first rule for `to` that still applies gives the answer and uses one of its N; 0 when none applies. */
static int
rule_take(struct sbx *s, const char *to, unsigned int *status, unsigned int *delay_ms)
{
	size_t i, len = strlen(to);

	for (i = 0; i < s->nrules; i++) {
		struct sbx_rule *r = &s->rules[i];

		if (r->msisdn_len != len || memcmp(r->msisdn, to, len) != 0)
			continue;
		if (r->limit >= 0 && r->used >= r->limit)
			continue;
		r->used++;
		*status = r->status;
		*delay_ms = r->delay_ms;
		return 1;
	}
	return 0;
}

/* ---- delay timer: resumes suspended connections when their answer is due ---- */

static void
timer_swap(struct timer_ent *h, size_t a, size_t b)
{
	struct timer_ent t = h[a];

	h[a] = h[b];
	h[b] = t;
}

static void
timer_sift_up(struct timer_ent *h, size_t i)
{
	while (i > 0 && h[(i - 1) / 2].due_ms > h[i].due_ms) {
		timer_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static struct MHD_Connection *
timer_pop(struct timerq *q)
{
	struct MHD_Connection *conn = q->heap[0].conn;
	size_t i = 0;

	q->heap[0] = q->heap[--q->n];
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < q->n && q->heap[l].due_ms < q->heap[m].due_ms)
			m = l;
		if (l + 1 < q->n && q->heap[l + 1].due_ms < q->heap[m].due_ms)
			m = l + 1;
		if (m == i)
			break;
		timer_swap(q->heap, i, m);
		i = m;
	}
	return conn;
}

/* The timer thread: resume each connection at its due time; on stop, resume every one at once, because
 * MHD must not be stopped with suspended connections. */
static void *
timer_main(void *arg)
{
	struct timerq *q = arg;

	pthread_mutex_lock(&q->mu);
	while (!q->stopping) {
		uint64_t now = now_ms(CLOCK_MONOTONIC);

		if (q->n == 0) {
			pthread_cond_wait(&q->cv, &q->mu);
		} else if (q->heap[0].due_ms <= now) {
			MHD_resume_connection(timer_pop(q));
		} else {
			struct timespec ts = { (time_t)(q->heap[0].due_ms / 1000),
				(long)(q->heap[0].due_ms % 1000) * 1000000 };

			pthread_cond_timedwait(&q->cv, &q->mu, &ts);
		}
	}
	while (q->n > 0)
		MHD_resume_connection(timer_pop(q));
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Suspend `conn` (from its access handler) and have the timer resume it in delay_ms; -1 when stopping or
 * out of memory, and then the caller answers at once. Suspending under q->mu means the timer can never
 * resume a connection that is not suspended yet. */
static int
timer_suspend(struct timerq *q, struct MHD_Connection *conn, unsigned int delay_ms)
{
	int rc = -1;

	pthread_mutex_lock(&q->mu);
	if (q->stopping)
		goto out;
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct timer_ent *h = realloc(q->heap, cap * sizeof(*h));

		if (h == NULL)
			goto out;
		q->heap = h;
		q->cap = cap;
	}
	q->heap[q->n].due_ms = now_ms(CLOCK_MONOTONIC) + delay_ms;
	q->heap[q->n].conn = conn;
	timer_sift_up(q->heap, q->n++);
	MHD_suspend_connection(conn);
	pthread_cond_signal(&q->cv);
	rc = 0;
out:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

static int
timer_start(struct timerq *q)
{
	pthread_condattr_t ca;

	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	return pthread_create(&q->thr, NULL, timer_main, q) == 0 ? 0 : -1;
}

/* Resume every suspended connection and stop the timer thread; call before MHD_stop_daemon(). */
static void
timer_stop(struct timerq *q)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thr, NULL);
	free(q->heap);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

/* ---- delivery reports: POST {"id","reference","status"} to --dlr-url from their own thread ---- */

/* Discard the answer body of a delivery report (libcurl would print it to stdout). */
static size_t
dlr_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* POST one report; failures are logged, never retried (the sandbox is not the subject under test here). */
static void
dlr_post(struct sbx *s, CURL *curl, struct curl_slist *headers, const struct dlr_item *d)
{
	json_t *o =
	    json_pack("{s:s,s:s,s:s}", "id", d->id, "reference", d->reference, "status", s->opt.dlr_status);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	long code = 0;
	CURLcode rc;

	json_decref(o);
	if (body == NULL) {
		log_warnx("dlr %s: out of memory", d->id);
		return;
	}
	curl_easy_setopt(curl, CURLOPT_URL, s->opt.dlr_url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, dlr_discard);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		log_warnx("dlr %s to %s: %s", d->id, s->opt.dlr_url, curl_easy_strerror(rc));
	else if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
	    (code < 200 || code > 299))
		log_warnx("dlr %s to %s: HTTP %ld", d->id, s->opt.dlr_url, code);
	else
		log_debug("dlr %s: HTTP %ld", d->id, code);
	free(body);
}

/* The report thread: one reused curl handle (kept-alive connection), reports posted when due. */
static void *
dlr_main(void *arg)
{
	struct sbx *s = arg;
	struct dlrq *q = &s->dlr;
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = curl_easy_init();
	char keyhdr[512];

	if (s->dlr_key != NULL) {
		snprintf(keyhdr, sizeof(keyhdr), "X-Payremind-Key: %s", s->dlr_key);
		headers = curl_slist_append(headers, keyhdr);
	}
	if (curl == NULL || headers == NULL)
		log_warnx("dlr: cannot initialise libcurl; delivery reports are dropped");
	pthread_mutex_lock(&q->mu);
	while (!q->stopping) {
		struct dlr_item *d = q->head;

		if (d == NULL) {
			pthread_cond_wait(&q->cv, &q->mu);
		} else if (d->due_ms > now_ms(CLOCK_MONOTONIC)) {
			struct timespec ts = { (time_t)(d->due_ms / 1000),
				(long)(d->due_ms % 1000) * 1000000 };

			pthread_cond_timedwait(&q->cv, &q->mu, &ts);
		} else {
			if ((q->head = d->next) == NULL)
				q->tail = NULL;
			q->n--;
			pthread_mutex_unlock(&q->mu);
			if (curl != NULL && headers != NULL)
				dlr_post(s, curl, headers, d);
			free(d);
			pthread_mutex_lock(&q->mu);
		}
	}
	pthread_mutex_unlock(&q->mu);
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	return NULL;
}

/* Queue a report for an accepted SMS; reports beyond SBX_DLR_QUEUE_MAX are dropped (counted, logged at exit). */
static void
dlr_enqueue(struct sbx *s, unsigned long id_seq, const char *reference)
{
	struct dlrq *q = &s->dlr;
	size_t rlen = strlen(reference);
	struct dlr_item *d = malloc(sizeof(*d) + rlen + 1);

	if (d == NULL) {
		log_warnx("dlr sbx-%lu: out of memory", id_seq);
		return;
	}
	d->next = NULL;
	d->due_ms = now_ms(CLOCK_MONOTONIC) + s->opt.dlr_delay_ms;
	snprintf(d->id, sizeof(d->id), "sbx-%lu", id_seq);
	memcpy(d->reference, reference, rlen + 1);
	pthread_mutex_lock(&q->mu);
	if (q->n >= SBX_DLR_QUEUE_MAX) {
		q->dropped++;
		free(d);
	} else {
		if (q->tail != NULL)
			q->tail->next = d;
		else
			q->head = d;
		q->tail = d;
		q->n++;
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
}

static int
dlr_start(struct sbx *s)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&s->dlr.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->dlr.cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&s->dlr.thr, NULL, dlr_main, s) != 0)
		return -1;
	s->dlr_running = 1;
	return 0;
}

/* Stop the report thread; reports not yet posted are dropped and counted. */
static void
dlr_stop(struct sbx *s)
{
	struct dlr_item *d, *next;
	unsigned long unsent = 0;

	pthread_mutex_lock(&s->dlr.mu);
	s->dlr.stopping = 1;
	pthread_cond_signal(&s->dlr.cv);
	pthread_mutex_unlock(&s->dlr.mu);
	pthread_join(s->dlr.thr, NULL);
	for (d = s->dlr.head; d != NULL; d = next, unsent++) {
		next = d->next;
		free(d);
	}
	if (unsent > 0 || s->dlr.dropped > 0)
		log_notice(
		    "dlr: %lu report(s) not sent at exit, %lu dropped (queue full)", unsent, s->dlr.dropped);
	pthread_cond_destroy(&s->dlr.cv);
	pthread_mutex_destroy(&s->dlr.mu);
}

/* ---- output: the record file (for tests) and the readable stdout blocks (for the demo) ---- */

static void
time_iso_utc(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000) % 1000);
}

/* One JSON line per SMS request, written with one writev() on an O_APPEND descriptor before the answer
 * goes out: a test reading the file after an answer finds its line, and no lock or buffer is needed. */
static void
record_write(struct sbx *s, const struct sms_req *r)
{
	char t[40], id[32], line[4096];
	json_t *o;
	char *big = NULL;
	size_t n = 0;
	struct iovec iov[2];

	if (s->record_fd == -1)
		return;
	time_iso_utc(t, sizeof(t));
	snprintf(id, sizeof(id), "sbx-%lu", r->id_seq);
	o = json_pack("{s:I,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,s:i,s:b,s:s?,s:s?,s:s?,s:o?,s:o?}", "seq",
	    (json_int_t)r->seq, "t", t, "key", r->key, "from", r->from, "to", r->to, "text", r->text,
	    "reference", r->reference, "expires_at", r->expires_at, "status", (int)r->status, "duplicate",
	    r->duplicate, "id", r->id_seq ? id : NULL, "error", r->error[0] ? r->error : NULL, "clock",
	    r->clock, "released", r->released > 0 ? json_real(r->released) : NULL, "dropped",
	    r->released > 0 ? json_boolean(r->dropped) : NULL);
	if (o != NULL && (n = json_dumpb(o, line, sizeof(line), JSON_COMPACT)) > sizeof(line)) {
		big = json_dumps(o, JSON_COMPACT);
		n = big ? strlen(big) : 0;
	}
	json_decref(o);
	iov[0].iov_base = big ? big : line;
	iov[0].iov_len = n;
	iov[1].iov_base = "\n";
	iov[1].iov_len = 1;
	if (n == 0 || writev(s->record_fd, iov, 2) != (ssize_t)n + 1)
		log_warn("record %s: seq %lu not written", s->opt.record_path, r->seq);
	free(big);
}

/* Write `text` with each line prefixed by "  | " so a multi-line SMS is visibly one message; other control
 * characters are shown as '.' so a text can never drive the terminal. */
static void
print_text_block(const char *text)
{
	const unsigned char *p;

	fputs("  | ", stdout);
	for (p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p == '\n')
			fputs("\n  | ", stdout);
		else
			putchar(*p < 0x20 || *p == 0x7f ? '.' : *p);
	}
	putchar('\n');
}

/* The block a newcomer sees in the demo for each new SMS: when, from, to, encoding and segments, text. */
static void
print_sms(const struct sms_req *r)
{
	struct gsm_info gi;
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("\n--- SMS sbx-%lu -------------------------------- %s ---\n", r->seq, when);
	printf("  from %s  to %s  (HTTP %u)\n", r->from, r->to, r->status);
	if (gsm_analyze(r->text, &gi) == 0)
		printf("  %s, %d segment%s (%zu %s%s)\n", gi.coding == GSM_CODING_GSM7 ? "GSM-7" : "UCS-2",
		    gi.segments, gi.segments == 1 ? "" : "s", gi.units,
		    gi.coding == GSM_CODING_GSM7 ? "septet" : "UTF-16 unit", gi.units == 1 ? "" : "s");
	else
		printf("  encoding unknown (text is not valid UTF-8)\n");
	print_text_block(r->text);
	printf("  reference %s\n", r->reference);
	fflush(stdout);
}

/* A one-line note for answers that are not a new SMS, so the demo shows retries and injected failures. */
static void
print_note(const struct sms_req *r)
{
	if (r->duplicate)
		printf("  (sbx-%lu: repeat of sbx-%lu with the same Idempotency-Key: answered 200 again, not "
		       "sent twice)\n",
		    r->seq, r->id_seq);
	else
		printf("  (sbx-%lu: answered HTTP %u to %s: %s)\n", r->seq, r->status, r->to ? r->to : "?",
		    r->error[0] ? r->error : "as told by --status, --rule or /_control");
	fflush(stdout);
}

/* ---- HTTP answers ---- */

static struct sbx_conn *
conn_ctx(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void answer_set(struct sbx_conn *cx, unsigned int status, const char *fmt, ...) PR_PRINTF(3, 4);

/* Decide the answer: status and a JSON body written into the connection's buffer (truncated if huge). */
static void
answer_set(struct sbx_conn *cx, unsigned int status, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cx->out, sizeof(cx->out), fmt, ap);
	va_end(ap);
	cx->status = status;
	cx->outlen = n < 0 ? 0 : (size_t)n >= sizeof(cx->out) ? sizeof(cx->out) - 1 : (size_t)n;
	cx->retry_after = 0;
}

/* {"error":"..."} with the message JSON-escaped by jansson (it may quote client input). */
static void
answer_error(struct sbx_conn *cx, unsigned int status, const char *msg)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;

	answer_set(cx, status, "%s", txt ? txt : "{\"error\":\"out of memory\"}");
	free(txt);
	json_decref(o);
}

/* Queue the decided answer; the body is the connection's own buffer, valid until the next request. */
static enum MHD_Result
answer_queue(struct MHD_Connection *conn, struct sbx_conn *cx)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(cx->outlen, cx->out, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;
	char ra[16];

	cx->pending = 0;
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (cx->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%u", cx->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	rc = MHD_queue_response(conn, cx->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* ---- the SMS endpoint ---- */

/* "+" then 8 to 15 digits, the first not 0 (E.164). */
static int
is_e164(const char *s)
{
	size_t n = 0;

	if (*s++ != '+' || *s == '0')
		return 0;
	for (; *s != '\0'; s++, n++)
		if (*s < '0' || *s > '9')
			return 0;
	return n >= 8 && n <= 15;
}

static int
content_type_is_json(const char *ct)
{
	static const char want[] = "application/json";

	if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return 0;
	ct += sizeof(want) - 1;
	return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/* Take the four string fields; -1 with "<field>: missing|not a string|empty" in r->error. */
static int
sms_fields(json_t *root, struct sms_req *r)
{
	static const char *names[] = { "from", "to", "text", "reference" };
	const char **dst[] = { &r->from, &r->to, &r->text, &r->reference };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *v = json_object_get(root, names[i]);

		if (v == NULL || json_is_null(v)) {
			snprintf(r->error, sizeof(r->error), "%s: missing", names[i]);
			return -1;
		}
		if (!json_is_string(v)) {
			snprintf(r->error, sizeof(r->error), "%s: not a string", names[i]);
			return -1;
		}
		*dst[i] = json_string_value(v);
		if (**dst[i] == '\0') {
			snprintf(r->error, sizeof(r->error), "%s: empty", names[i]);
			return -1;
		}
	}
	r->expires_at = json_string_value(json_object_get(root, "expires_at"));
	return 0;
}

/* Check a request as a real json-dialect gateway would, in this order: bearer (401), body size (413),
 * content type (415), JSON and fields (400), then the sender, which payremind must never get wrong.
 * On failure r->status and r->error say why; *root is set once the body parsed. */
static int
sms_validate(
    struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx, json_t **root, struct sms_req *r)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	json_error_t jerr;
	char masked[32];

	r->status = 400;
	if (s->auth_expected != NULL && (auth == NULL || strcmp(auth, s->auth_expected) != 0)) {
		r->status = 401;
		snprintf(r->error, sizeof(r->error), "authorization: %s bearer", auth ? "wrong" : "missing");
		return -1;
	}
	if (cx->too_large) {
		r->status = 413;
		snprintf(r->error, sizeof(r->error), "body: larger than %d bytes", SBX_MAX_BODY);
		return -1;
	}
	if (!content_type_is_json(
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		r->status = 415;
		snprintf(r->error, sizeof(r->error), "content-type: expected application/json");
		return -1;
	}
	if (r->key != NULL && (r->key[0] == '\0' || strlen(r->key) > SBX_MAX_KEY)) {
		snprintf(r->error, sizeof(r->error), "idempotency-key: empty or longer than %d", SBX_MAX_KEY);
		return -1;
	}
	*root = json_loadb(cx->body ? cx->body : "", cx->len, 0, &jerr);
	if (*root == NULL || !json_is_object(*root)) {
		snprintf(r->error, sizeof(r->error), "body: not a JSON object%s%.80s", *root ? "" : ": ",
		    *root ? "" : jerr.text);
		return -1;
	}
	if (sms_fields(*root, r) == -1)
		return -1;
	if (!is_e164(r->to)) {
		snprintf(r->error, sizeof(r->error), "to: not an E.164 number");
		return -1;
	}
	if (strcmp(r->from, "27022") != 0 && strcmp(r->from, "270282") != 0) {
		snprintf(r->error, sizeof(r->error), "from: not an ARO short code (27022, 270282)");
		log_warnx("!!! REJECTED SMS from=\"%s\" to=%s: the sender is not 27022 or 270282. "
		          "payremind must never send this: this is a bug !!!",
		    r->from, log_mask_msisdn(r->to, masked, sizeof(masked)));
		return -1;
	}
	r->status = 0;
	return 0;
}

/* --carrier-rate: queue an accepted SMS as a carrier meters a short code (Twilio's queue): released in
 * arrival order (the daemon's simulated instant when it sends one, else now) at the rate in segments per
 * second, or dropped when that would be after its expires_at. Runs under s->mu. */
static void
carrier_queue(struct sbx *s, struct sms_req *r)
{
	double *free_at = &s->carrier_free[strcmp(r->from, "270282") == 0];
	struct gsm_info info;
	struct tm tm;
	char *end;

	r->released = r->clock != NULL ? strtod(r->clock, NULL) : (double)now_ms(CLOCK_REALTIME) / 1000.0;
	if (r->released < *free_at)
		r->released = *free_at;
	memset(&tm, 0, sizeof(tm));
	if (r->expires_at != NULL && (end = strptime(r->expires_at, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL &&
	    *end == '\0' && r->released > (double)timegm(&tm)) {
		r->dropped = 1;
		return;
	}
	*free_at = r->released + (gsm_analyze(r->text, &info) == 0 ? info.segments : 1) / s->opt.carrier_rate;
}

/* Decide the answer of a valid request, in this order: a repeat of an accepted Idempotency-Key gets 200 and
 * the same id; else the first applicable --rule for the number; else the defaults. A 2xx remembers the key,
 * an error does not (a retry may succeed). Runs under s->mu. */
static void
sms_decide(struct sbx *s, struct sms_req *r, int valid)
{
	uint64_t h = r->key ? idem_hash(r->key) : 0;

	r->seq = ++s->seq;
	s->received++;
	if (!valid) {
		s->errors++;
	} else if (r->key != NULL && (r->id_seq = idem_find(&s->idem, r->key, h)) != 0) {
		r->duplicate = 1;
		r->status = 200;
		r->delay_ms = atomic_load(&s->delay_ms);
		s->duplicates++;
	} else {
		if (s->opt.down_from > 0 && r->clock != NULL && strtod(r->clock, NULL) >= s->opt.down_from) {
			r->status = 503;
			r->delay_ms = 0;
		} else if (!rule_take(s, r->to, &r->status, &r->delay_ms)) {
			r->status = atomic_load(&s->status);
			r->delay_ms = atomic_load(&s->delay_ms);
		}
		if (r->status >= 300) {
			s->errors++;
		} else {
			r->id_seq = r->seq;
			s->accepted++;
			if (s->opt.carrier_rate > 0)
				carrier_queue(s, r);
			if (r->key != NULL && idem_insert(&s->idem, r->key, h, r->seq) == -1)
				log_warnx("sbx-%lu: out of memory: Idempotency-Key not remembered", r->seq);
		}
	}
}

/* Write the decided answer into the connection: {"id"} for 2xx, {"error"} otherwise, Retry-After on 429/503. */
static void
sms_answer(struct sbx *s, struct sbx_conn *cx, const struct sms_req *r)
{
	unsigned int retry_after = atomic_load(&s->retry_after);

	if (r->error[0] != '\0') {
		answer_error(cx, r->status, r->error);
		return;
	}
	if (r->status < 300) {
		answer_set(cx, r->status, "{\"id\":\"sbx-%lu\"}", r->id_seq);
		return;
	}
	answer_set(cx, r->status, "{\"error\":\"sandbox status %u\"}", r->status);
	if (r->status == 429 || r->status == 503)
		cx->retry_after = retry_after;
}

/* A delayed request has ended (answered, failed or abandoned): it no longer holds up the shutdown. */
static void
request_end(struct sbx *s, struct sbx_conn *cx)
{
	if (cx->delayed) {
		cx->delayed = 0;
		atomic_fetch_sub(&s->delayed, 1);
	}
}

/* POST (any path but the control ones): validate, decide, record, then answer now or after the delay. */
static enum MHD_Result
sms_request(struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx)
{
	struct sms_req r;
	json_t *root = NULL;
	int valid;

	memset(&r, 0, sizeof(r));
	r.key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
	r.clock = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Payremind-Test-Clock");
	valid = sms_validate(s, conn, cx, &root, &r) == 0;
	pthread_mutex_lock(&s->mu);
	sms_decide(s, &r, valid);
	pthread_mutex_unlock(&s->mu);
	record_write(s, &r);
	if (!s->opt.quiet) {
		pthread_mutex_lock(&s->out_mu);
		if (r.id_seq == r.seq)
			print_sms(&r);
		else
			print_note(&r);
		pthread_mutex_unlock(&s->out_mu);
	}
	if (s->dlr_running && r.id_seq == r.seq)
		dlr_enqueue(s, r.id_seq, r.reference);
	json_decref(root);
	sms_answer(s, cx, &r);
	if (r.delay_ms > 0) {
		atomic_fetch_add(&s->delayed, 1);
		cx->delayed = 1;
		if (timer_suspend(&s->timers, conn, r.delay_ms) == 0) {
			cx->pending = 1;
			return MHD_YES;
		}
		request_end(s, cx);
	}
	return answer_queue(conn, cx);
}

/* ---- control endpoints ---- */

static enum MHD_Result
control_stats(struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx)
{
	pthread_mutex_lock(&s->mu);
	answer_set(cx, 200, "{\"received\":%lu,\"accepted\":%lu,\"duplicates\":%lu,\"errors\":%lu}",
	    s->received, s->accepted, s->duplicates, s->errors);
	pthread_mutex_unlock(&s->mu);
	return answer_queue(conn, cx);
}

/* Forget counts, accepted keys and how often each rule was used; sequence numbers go on, so ids stay unique. */
static enum MHD_Result
control_reset(struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx)
{
	size_t i;

	pthread_mutex_lock(&s->mu);
	idem_clear(&s->idem);
	s->received = s->accepted = s->duplicates = s->errors = 0;
	for (i = 0; i < s->nrules; i++)
		s->rules[i].used = 0;
	pthread_mutex_unlock(&s->mu);
	answer_set(cx, 200, "{\"reset\":true}");
	return answer_queue(conn, cx);
}

/* Read one optional integer setting of a /_control body; -1 with a reason when present but out of range. */
static int
control_int(
    json_t *root, const char *name, long long min, long long max, unsigned int *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(root, name);

	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(err, errlen, "%s: expected an integer %lld..%lld", name, min, max);
		return -1;
	}
	*out = (unsigned int)json_integer_value(v);
	return 0;
}

/* Parse a /_control body into st/dl/ra, all or none; -1 with a reason (unknown keys are refused: typos). */
static int
control_parse(
    const struct sbx_conn *cx, unsigned int *st, unsigned int *dl, unsigned int *ra, char *err, size_t errlen)
{
	json_t *root = cx->len ? json_loadb(cx->body, cx->len, 0, NULL) : json_object();
	const char *k;
	json_t *v;
	int rc = -1;

	if (root == NULL || !json_is_object(root)) {
		snprintf(err, errlen, "body: not a JSON object");
		goto out;
	}
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "status") != 0 && strcmp(k, "delay_ms") != 0 && strcmp(k, "retry_after") != 0) {
			snprintf(err, errlen, "%s: unknown setting (status, delay_ms, retry_after)", k);
			goto out;
		}
	}
	if (control_int(root, "status", 200, 599, st, err, errlen) == -1 ||
	    control_int(root, "delay_ms", 0, SBX_MAX_DELAY_MS, dl, err, errlen) == -1 ||
	    control_int(root, "retry_after", 0, 86400, ra, err, errlen) == -1)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* POST /_control {"status","delay_ms","retry_after"} changes the defaults (all or none); GET only shows them.
 * Either way the answer is the settings now in force. */
static enum MHD_Result
control_set(struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx, int apply)
{
	unsigned int st = atomic_load(&s->status), dl = atomic_load(&s->delay_ms),
	             ra = atomic_load(&s->retry_after);
	char err[128];

	if (apply) {
		if (control_parse(cx, &st, &dl, &ra, err, sizeof(err)) == -1) {
			answer_error(cx, 400, err);
			return answer_queue(conn, cx);
		}
		atomic_store(&s->status, st);
		atomic_store(&s->delay_ms, dl);
		atomic_store(&s->retry_after, ra);
		log_info("control: default answer %u, delay %u ms, retry-after %u s", st, dl, ra);
	}
	answer_set(cx, 200, "{\"status\":%u,\"delay_ms\":%u,\"retry_after\":%u}", st, dl, ra);
	return answer_queue(conn, cx);
}

/* ---- MHD callbacks ---- */

/* Append an upload chunk to the connection's body buffer, which grows once and is then reused. */
static void
conn_append(struct sbx_conn *cx, const char *data, size_t len)
{
	if (cx->too_large || cx->len + len > SBX_MAX_BODY) {
		cx->too_large = 1;
		return;
	}
	if (cx->len + len > cx->cap) {
		size_t cap = cx->cap ? cx->cap : 1024;
		char *b;

		while (cap < cx->len + len)
			cap *= 2;
		if ((b = realloc(cx->body, cap)) == NULL) {
			cx->too_large = 1;
			return;
		}
		cx->body = b;
		cx->cap = cap;
	}
	memcpy(cx->body + cx->len, data, len);
	cx->len += len;
}

static enum MHD_Result
route(struct sbx *s, struct MHD_Connection *conn, struct sbx_conn *cx, const char *url, const char *method)
{
	int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0, get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;

	if (strcmp(url, "/_stats") == 0 && get)
		return control_stats(s, conn, cx);
	if (strcmp(url, "/_reset") == 0 && post)
		return control_reset(s, conn, cx);
	if (strcmp(url, "/_control") == 0 && (post || get))
		return control_set(s, conn, cx, post);
	if (strncmp(url, "/_", 2) != 0 && post)
		return sms_request(s, conn, cx);
	answer_error(
	    cx, 405, "method not allowed: POST an SMS; GET /_stats; GET or POST /_control; POST /_reset");
	return answer_queue(conn, cx);
}

/* Access handler: the first call starts a request, the next ones collect the body, the last one answers;
 * a request suspended for its delay is called once more on resume and sends the answer decided earlier. */
static enum MHD_Result
sbx_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct sbx_conn *cx = conn_ctx(conn);

	(void)version;
	if (cx == NULL)
		return MHD_NO;
	if (*req_cls == NULL) {
		*req_cls = cx;
		cx->len = 0;
		cx->too_large = 0;
		cx->pending = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		conn_append(cx, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (cx->pending)
		return answer_queue(conn, cx);
	return route(cls, conn, cx, url, method);
}

static void
sbx_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	(void)toe;
	if (*req_cls != NULL)
		request_end(cls, *req_cls);
}

static void
sbx_notify(
    void *cls, struct MHD_Connection *conn, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
	struct sbx_conn *cx = *socket_context;

	(void)conn;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct sbx_conn));
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && cx != NULL) {
		request_end(cls, cx);
		free(cx->body);
		free(cx);
		*socket_context = NULL;
	}
}

static void
sbx_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (n > 0 && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}

/* ---- start-up ---- */

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sandbox-gateway [--listen ADDR] [--port N] [--port-file FILE] [--bearer TOKEN]\n"
	    "           [--status CODE] [--delay-ms MS] [--retry-after S] [--rule "
	    "MSISDN=STATUS[:DELAY_MS][*N]]...\n"
	    "           [--record FILE] [--quiet] [--threads N] [--verbose] [--down-from EPOCH]\n"
	    "           [--carrier-rate SEGMENTS_PER_S]\n"
	    "           [--dlr-url URL [--dlr-key-file FILE] [--dlr-status STATUS] [--dlr-delay-ms MS]]\n"
	    "A fake SMS gateway speaking payremind's json dialect; see tools/README-sandbox.md.\n");
}

/* Parse an unsigned option value in [min, max] or exit 64 naming the option. */
static unsigned int
opt_uint(const char *name, const char *v, unsigned long min, unsigned long max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || n < min || n > max) {
		log_warnx("--%s: expected an integer %lu..%lu, got \"%s\"", name, min, max, v);
		exit(EX_USAGE);
	}
	return (unsigned int)n;
}

/* Parse a positive number (an instant in epoch seconds, a rate) or exit 64 naming the option. */
static double
opt_positive(const char *name, const char *v)
{
	char *end;
	double t = strtod(v, &end);

	if (end == v || *end != '\0' || !(t > 0) || t > 1e12) {
		log_warnx("--%s: expected a positive number, got \"%s\"", name, v);
		exit(EX_USAGE);
	}
	return t;
}

static void
opt_rule(struct sbx *s, const char *arg)
{
	struct sbx_rule r, *rules;
	char err[128];

	if (rule_parse(arg, &r, err, sizeof(err)) == -1) {
		log_warnx("--rule \"%s\": %s", arg, err);
		exit(EX_USAGE);
	}
	if ((rules = realloc(s->rules, (s->nrules + 1) * sizeof(*rules))) == NULL)
		fatal("--rule");
	s->rules = rules;
	s->rules[s->nrules++] = r;
}

enum {
	OPT_LISTEN = 256,
	OPT_PORT,
	OPT_PORT_FILE,
	OPT_BEARER,
	OPT_STATUS,
	OPT_DELAY,
	OPT_RETRY_AFTER,
	OPT_RULE,
	OPT_RECORD,
	OPT_THREADS,
	OPT_DLR_URL,
	OPT_DLR_KEY_FILE,
	OPT_DLR_STATUS,
	OPT_DLR_DELAY,
	OPT_DOWN_FROM,
	OPT_CARRIER_RATE
};

static void
opts_parse(struct sbx *s, int argc, char **argv)
{
	static const struct option longopts[] = { { "listen", required_argument, NULL, OPT_LISTEN },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "port-file", required_argument, NULL, OPT_PORT_FILE },
		{ "bearer", required_argument, NULL, OPT_BEARER },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "delay-ms", required_argument, NULL, OPT_DELAY },
		{ "retry-after", required_argument, NULL, OPT_RETRY_AFTER },
		{ "rule", required_argument, NULL, OPT_RULE },
		{ "record", required_argument, NULL, OPT_RECORD },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "dlr-url", required_argument, NULL, OPT_DLR_URL },
		{ "dlr-key-file", required_argument, NULL, OPT_DLR_KEY_FILE },
		{ "dlr-status", required_argument, NULL, OPT_DLR_STATUS },
		{ "dlr-delay-ms", required_argument, NULL, OPT_DLR_DELAY },
		{ "down-from", required_argument, NULL, OPT_DOWN_FROM },
		{ "carrier-rate", required_argument, NULL, OPT_CARRIER_RATE },
		{ "quiet", no_argument, NULL, 'q' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int c;

	while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			s->opt.listen = optarg;
			break;
		case OPT_PORT:
			s->opt.port = opt_uint("port", optarg, 0, 65535);
			break;
		case OPT_PORT_FILE:
			s->opt.port_file = optarg;
			break;
		case OPT_BEARER:
			s->opt.bearer = optarg;
			break;
		case OPT_STATUS:
			atomic_store(&s->status, opt_uint("status", optarg, 200, 599));
			break;
		case OPT_DELAY:
			atomic_store(&s->delay_ms, opt_uint("delay-ms", optarg, 0, SBX_MAX_DELAY_MS));
			break;
		case OPT_RETRY_AFTER:
			atomic_store(&s->retry_after, opt_uint("retry-after", optarg, 0, 86400));
			break;
		case OPT_RULE:
			opt_rule(s, optarg);
			break;
		case OPT_RECORD:
			s->opt.record_path = optarg;
			break;
		case OPT_THREADS:
			s->opt.threads = opt_uint("threads", optarg, 1, 64);
			break;
		case OPT_DLR_URL:
			s->opt.dlr_url = optarg;
			break;
		case OPT_DLR_KEY_FILE:
			s->opt.dlr_key_file = optarg;
			break;
		case OPT_DLR_STATUS:
			s->opt.dlr_status = optarg;
			break;
		case OPT_DLR_DELAY:
			s->opt.dlr_delay_ms = opt_uint("dlr-delay-ms", optarg, 0, SBX_MAX_DELAY_MS);
			break;
		case OPT_DOWN_FROM:
			s->opt.down_from = opt_positive("down-from", optarg);
			break;
		case OPT_CARRIER_RATE:
			s->opt.carrier_rate = opt_positive("carrier-rate", optarg);
			break;
		case 'q':
			s->opt.quiet = 1;
			break;
		case 'v':
			s->opt.verbose = 1;
			break;
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

/* Read a secret file's first line (trailing newline stripped, as payremind does); NULL with errno on failure. */
static char *
secret_read(const char *path)
{
	FILE *fp = fopen(path, "r");
	char buf[512];
	size_t n;

	if (fp == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

/* Everything the options imply before the daemon starts: bearer, DLR settings, record file. */
static void
sbx_setup(struct sbx *s)
{
	static const char *dlr_states[] = { "accepted", "buffered", "delivered", "undelivered", "failed" };
	size_t i;

	if (s->opt.bearer != NULL && asprintf(&s->auth_expected, "Bearer %s", s->opt.bearer) == -1)
		fatal("bearer");
	if (s->opt.dlr_url == NULL && (s->opt.dlr_key_file || s->opt.dlr_status || s->opt.dlr_delay_ms)) {
		log_warnx("--dlr-key-file, --dlr-status and --dlr-delay-ms need --dlr-url");
		exit(EX_USAGE);
	}
	if (s->opt.dlr_status == NULL)
		s->opt.dlr_status = "delivered";
	for (i = 0; i < sizeof(dlr_states) / sizeof(dlr_states[0]); i++)
		if (strcmp(s->opt.dlr_status, dlr_states[i]) == 0)
			break;
	if (i == sizeof(dlr_states) / sizeof(dlr_states[0])) {
		log_warnx("--dlr-status: expected accepted, buffered, delivered, undelivered or failed");
		exit(EX_USAGE);
	}
	if (s->opt.dlr_key_file != NULL && (s->dlr_key = secret_read(s->opt.dlr_key_file)) == NULL)
		fatal("--dlr-key-file %s", s->opt.dlr_key_file);
	s->record_fd = -1;
	if (s->opt.record_path != NULL &&
	    (s->record_fd = open(s->opt.record_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) == -1)
		fatal("--record %s", s->opt.record_path);
}

/* Raise the descriptor limit to the hard limit: the benchmark opens many kept-alive connections. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit(RLIMIT_NOFILE)");
	}
}

static struct MHD_Daemon *
daemon_start(struct sbx *s)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	const struct sockaddr *sa;
	unsigned int flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, s->opt.listen, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)s->opt.port);
		sa = (const struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, s->opt.listen, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)s->opt.port);
		sa = (const struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		log_warnx("--listen: \"%s\" is not an IPv4 or IPv6 address", s->opt.listen);
		exit(EX_USAGE);
	}
	return MHD_start_daemon(flags, s->opt.port, NULL, NULL, sbx_access, s, MHD_OPTION_EXTERNAL_LOGGER,
	    sbx_mhd_log, s, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, s->opt.threads,
	    MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_CONNECTION_LIMIT, 20000u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 300u, MHD_OPTION_NOTIFY_CONNECTION, sbx_notify, s,
	    MHD_OPTION_NOTIFY_COMPLETED, sbx_completed, s, MHD_OPTION_END);
}

/* Write the bound port to a temporary file and rename it into place, so a reader never sees half of it. */
static void
port_file_write(const char *path, unsigned int port)
{
	char tmp[4096];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((fp = fopen(tmp, "w")) == NULL)
		fatal("--port-file %s", tmp);
	if (fprintf(fp, "%u\n", port) < 0 || fclose(fp) == EOF)
		fatal("--port-file %s", tmp);
	if (rename(tmp, path) == -1)
		fatal("--port-file: rename %s to %s", tmp, path);
}

static unsigned int
daemon_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return di ? di->port : 0;
}

/* Wait for SIGTERM or SIGINT (blocked in every thread, so only this wait receives them). */
static int
signals_wait(const sigset_t *set)
{
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

/* Orderly stop: answer delayed requests at once (up to 2 s for them to go out), stop MHD, stop reports,
 * free everything (valgrind clean). */
static void
sbx_fini(struct sbx *s)
{
	int i;

	timer_stop(&s->timers);
	for (i = 0; i < 200 && atomic_load(&s->delayed) > 0; i++)
		usleep(10000);
	MHD_stop_daemon(s->daemon);
	log_info("stopped: received %lu, accepted %lu, duplicates %lu, errors %lu", s->received, s->accepted,
	    s->duplicates, s->errors);
	if (s->dlr_running)
		dlr_stop(s);
	idem_clear(&s->idem);
	if (s->record_fd != -1 && close(s->record_fd) == -1)
		log_warn("record %s", s->opt.record_path);
	free(s->rules);
	free(s->auth_expected);
	free(s->dlr_key);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->out_mu);
	curl_global_cleanup();
}

int
main(int argc, char **argv)
{
	static struct sbx s;
	sigset_t set;
	unsigned int port;
	int sig;

	log_init("sandbox-gateway", 0);
	s.opt.listen = "127.0.0.1";
	s.opt.port = 9090;
	s.opt.threads = 2;
	atomic_init(&s.status, 202);
	atomic_init(&s.delay_ms, 0);
	atomic_init(&s.retry_after, 0);
	atomic_init(&s.delayed, 0);
	pthread_mutex_init(&s.mu, NULL);
	pthread_mutex_init(&s.out_mu, NULL);
	opts_parse(&s, argc, argv);
	log_init("sandbox-gateway", s.opt.verbose);
	sbx_setup(&s);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatalx("curl_global_init failed");
	if (timer_start(&s.timers) == -1)
		fatalx("cannot start the delay timer thread");
	if (s.opt.dlr_url != NULL && dlr_start(&s) == -1)
		fatalx("cannot start the delivery-report thread");
	if ((s.daemon = daemon_start(&s)) == NULL)
		fatalx("cannot listen on %s port %u", s.opt.listen, s.opt.port);
	port = daemon_port(s.daemon);
	if (s.opt.port_file != NULL)
		port_file_write(s.opt.port_file, port);
	log_info("listening on %s port %u (default answer %u, delay %u ms, %zu rule(s), %u thread(s))",
	    s.opt.listen, port, atomic_load(&s.status), atomic_load(&s.delay_ms), s.nrules, s.opt.threads);
	sig = signals_wait(&set);
	log_info("%s: stopping", strsignal(sig));
	sbx_fini(&s);
	return 0;
}
