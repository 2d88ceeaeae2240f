/* Prometheus counters shared by the scheduler (loop thread) and the listener (its own threads). */
#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "payremind/keyword.h"
#include "payremind/metrics.h"

#define METRICS_NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define METRICS_OUTCOMES (GW_CONFIG + 1)
#define METRICS_MAX_SECONDS 86400.0 /* clamp for an absurd observation: the sum must not overflow */

/* Gateway latency buckets (seconds): a healthy gateway answers in tens of milliseconds, timeouts
 * are gateway.timeout_ms (10 s by default). */
static const double metrics_buckets[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

/* HTTP statuses the listener answers; anything else counts as "other". */
static const unsigned metrics_codes[] = { 200, 303, 400, 401, 403, 404, 405, 410, 413, 429, 500, 503 };

/* What a payment link led to (payremind_page_views_total{result}), and the portal's results. */
static const char *const metrics_page_results[] = { "valid", "spent", "nothing", "unknown" };
static const char *const metrics_payment_statuses[] = { "paid", "failed", "cancelled" };

static atomic_ullong metrics_sends[METRICS_OUTCOMES];
static atomic_ullong metrics_latency[METRICS_NELEM(metrics_buckets) + 1]; /* per bucket, last: above all */
static atomic_ullong metrics_latency_sum_us;
static atomic_ullong metrics_inbound[KEYWORD_COUNT + 1]; /* last: other */
static atomic_ullong metrics_dlrs[WEBHOOK_DLR_COUNT];
static atomic_ullong metrics_responses[METRICS_NELEM(metrics_codes) + 1]; /* last: other */
static atomic_ullong metrics_pages[METRICS_NELEM(metrics_page_results)];
static atomic_ullong metrics_checkouts;
static atomic_ullong metrics_payments[METRICS_NELEM(metrics_payment_statuses)];
static atomic_ullong metrics_skips[POLICY_REASONS];
static atomic_int metrics_circuit_state;
static _Atomic double metrics_circuit_since;

static unsigned long long
metrics_load(atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void
metrics_add(atomic_ullong *v, unsigned long long n)
{
	atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

void
metrics_count_send(enum gw_outcome outcome)
{
	if ((unsigned)outcome < METRICS_OUTCOMES)
		metrics_add(&metrics_sends[outcome], 1);
}

void
metrics_observe_latency(double seconds)
{
	size_t i;

	if (!(seconds >= 0)) /* NaN and negative clock steps */
		seconds = 0;
	if (seconds > METRICS_MAX_SECONDS)
		seconds = METRICS_MAX_SECONDS;
	for (i = 0; i < METRICS_NELEM(metrics_buckets) && seconds > metrics_buckets[i]; i++)
		;
	metrics_add(&metrics_latency[i], 1);
	metrics_add(&metrics_latency_sum_us, (unsigned long long)llround(seconds * 1e6));
}

void
metrics_count_inbound(int keyword_index)
{
	metrics_add(&metrics_inbound[keyword_name(keyword_index) ? keyword_index : KEYWORD_COUNT], 1);
}

void
metrics_count_dlr(enum webhook_dlr_status status)
{
	metrics_add(&metrics_dlrs[(unsigned)status < WEBHOOK_DLR_COUNT ? status : WEBHOOK_DLR_OTHER], 1);
}

void
metrics_count_page(int result)
{
	if (result >= 0 && (size_t)result < METRICS_NELEM(metrics_page_results))
		metrics_add(&metrics_pages[result], 1);
}

void
metrics_count_checkout(void)
{
	metrics_add(&metrics_checkouts, 1);
}

void
metrics_count_payment(const char *status)
{
	size_t i;

	for (i = 0; i < METRICS_NELEM(metrics_payment_statuses); i++)
		if (strcmp(status, metrics_payment_statuses[i]) == 0)
			metrics_add(&metrics_payments[i], 1);
}

void
metrics_count_response(unsigned status)
{
	size_t i;

	for (i = 0; i < METRICS_NELEM(metrics_codes) && metrics_codes[i] != status; i++)
		;
	metrics_add(&metrics_responses[i], 1);
}

void
metrics_count_skip(enum policy_reason reason)
{
	if (reason > POLICY_SEND && reason < POLICY_REASONS)
		metrics_add(&metrics_skips[reason], 1);
}

void
metrics_set_circuit(int state, double since)
{
	atomic_store(&metrics_circuit_since, since);
	atomic_store(&metrics_circuit_state, state);
}

int
metrics_circuit(double *since)
{
	*since = atomic_load(&metrics_circuit_since);
	return atomic_load(&metrics_circuit_state);
}

void
metrics_reset(void)
{
	size_t i;

	for (i = 0; i < METRICS_OUTCOMES; i++)
		atomic_store(&metrics_sends[i], 0);
	for (i = 0; i < METRICS_NELEM(metrics_latency); i++)
		atomic_store(&metrics_latency[i], 0);
	atomic_store(&metrics_latency_sum_us, 0);
	for (i = 0; i < METRICS_NELEM(metrics_inbound); i++)
		atomic_store(&metrics_inbound[i], 0);
	for (i = 0; i < WEBHOOK_DLR_COUNT; i++)
		atomic_store(&metrics_dlrs[i], 0);
	for (i = 0; i < METRICS_NELEM(metrics_pages); i++)
		atomic_store(&metrics_pages[i], 0);
	atomic_store(&metrics_checkouts, 0);
	for (i = 0; i < METRICS_NELEM(metrics_payments); i++)
		atomic_store(&metrics_payments[i], 0);
	for (i = 0; i < METRICS_NELEM(metrics_responses); i++)
		atomic_store(&metrics_responses[i], 0);
	for (i = 0; i < POLICY_REASONS; i++)
		atomic_store(&metrics_skips[i], 0);
	metrics_set_circuit(0, 0);
}

static void
metrics_header(FILE *fp, const char *name, const char *type, const char *help)
{
	fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_line(FILE *fp, const char *name, const char *label, const char *key, unsigned long long v)
{
	fprintf(fp, "%s{%s=\"%s\"} %llu\n", name, label, key, v);
}

/* Buckets are stored one by one and summed here, so +Inf and _count always agree with the buckets
 * even while other threads observe. */
static void
metrics_write_latency(FILE *fp)
{
	static const char name[] = "payremind_gateway_latency_seconds";
	unsigned long long cum = 0;
	size_t i;

	metrics_header(
	    fp, name, "histogram", "Time from sending a request to the SMS gateway to its answer.");
	for (i = 0; i < METRICS_NELEM(metrics_buckets); i++) {
		cum += metrics_load(&metrics_latency[i]);
		fprintf(fp, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_buckets[i], cum);
	}
	cum += metrics_load(&metrics_latency[i]);
	fprintf(fp, "%s_bucket{le=\"+Inf\"} %llu\n", name, cum);
	fprintf(fp, "%s_sum %.6f\n%s_count %llu\n", name, (double)metrics_load(&metrics_latency_sum_us) / 1e6,
	    name, cum);
}

static void
metrics_write_inbound(FILE *fp)
{
	static const char name[] = "payremind_inbound_total";
	char key[KEYWORD_NORM_MAX + 1];
	int i, j;

	metrics_header(fp, name, "counter", "Inbound messages recorded, by keyword (other: not a keyword).");
	for (i = 0; i < KEYWORD_COUNT; i++) {
		const char *kw = keyword_name(i);

		for (j = 0; kw[j] && j < KEYWORD_NORM_MAX; j++)
			key[j] = (char)tolower((unsigned char)kw[j]);
		key[j] = '\0';
		metrics_line(fp, name, "keyword", key, metrics_load(&metrics_inbound[i]));
	}
	metrics_line(fp, name, "keyword", "other", metrics_load(&metrics_inbound[KEYWORD_COUNT]));
}

static void
metrics_write_responses(FILE *fp)
{
	static const char name[] = "payremind_webhook_responses_total";
	char key[16];
	size_t i;

	metrics_header(fp, name, "counter", "Listener answers by HTTP status.");
	for (i = 0; i < METRICS_NELEM(metrics_codes); i++) {
		snprintf(key, sizeof(key), "%u", metrics_codes[i]);
		metrics_line(fp, name, "code", key, metrics_load(&metrics_responses[i]));
	}
	metrics_line(fp, name, "code", "other", metrics_load(&metrics_responses[i]));
}

int
metrics_write(FILE *fp)
{
	static const char sends[] = "payremind_sends_total", dlrs[] = "payremind_dlrs_total";
	int i;

	metrics_header(fp, sends, "counter", "SMS delivery attempts by classified outcome.");
	for (i = 0; i < METRICS_OUTCOMES; i++)
		metrics_line(fp, sends, "outcome", gw_outcome_to_text((enum gw_outcome)i),
		    metrics_load(&metrics_sends[i]));
	metrics_write_latency(fp);
	metrics_header(fp, dlrs, "counter", "Delivery reports recorded, by status.");
	for (i = 0; i < WEBHOOK_DLR_COUNT; i++)
		metrics_line(fp, dlrs, "status", webhook_dlr_status_to_text((enum webhook_dlr_status)i),
		    metrics_load(&metrics_dlrs[i]));
	metrics_write_inbound(fp);
	metrics_write_responses(fp);
	metrics_header(fp, "payremind_page_views_total", "counter",
	    "Payment page views (GET and HEAD) by what the link led to.");
	for (i = 0; i < (int)METRICS_NELEM(metrics_page_results); i++)
		metrics_line(fp, "payremind_page_views_total", "result", metrics_page_results[i],
		    metrics_load(&metrics_pages[i]));
	metrics_header(fp, "payremind_checkouts_total", "counter",
	    "Payment links spent by their button: hand-offs to the payment portal.");
	fprintf(fp, "payremind_checkouts_total %llu\n", metrics_load(&metrics_checkouts));
	metrics_header(
	    fp, "payremind_payments_total", "counter", "Payment results from the portal, by status.");
	for (i = 0; i < (int)METRICS_NELEM(metrics_payment_statuses); i++)
		metrics_line(fp, "payremind_payments_total", "status", metrics_payment_statuses[i],
		    metrics_load(&metrics_payments[i]));
	metrics_header(fp, "payremind_skips_total", "counter",
	    "Due rows the scheduler did not send to, by the rule that stopped it.");
	for (i = POLICY_SEND + 1; i < POLICY_REASONS; i++)
		metrics_line(fp, "payremind_skips_total", "reason",
		    policy_reason_to_text((enum policy_reason)i), metrics_load(&metrics_skips[i]));
	metrics_header(fp, "payremind_gateway_circuit_open", "gauge",
	    "1 while this daemon's gateway circuit breaker is open or probing (nothing new is sent).");
	fprintf(fp, "payremind_gateway_circuit_open %d\n", atomic_load(&metrics_circuit_state) != 0);
	metrics_header(fp, "payremind_gateway_circuit_since_seconds", "gauge",
	    "Unix time the circuit breaker last changed state (0: never since start).");
	fprintf(fp, "payremind_gateway_circuit_since_seconds %.0f\n", atomic_load(&metrics_circuit_since));
	return ferror(fp) ? -1 : 0;
}

int
metrics_write_gauge(FILE *fp, const char *name, const char *help, const char *label, const char *const *keys,
    const long long *values, size_t n)
{
	size_t i;

	metrics_header(fp, name, "gauge", help);
	for (i = 0; i < n; i++)
		fprintf(fp, "%s{%s=\"%s\"} %lld\n", name, label, keys[i], values[i]);
	return ferror(fp) ? -1 : 0;
}
