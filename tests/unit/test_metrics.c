/* Unit tests of metrics.c: counters, the latency histogram, the text format, and counting from threads. */
#define _GNU_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <regex.h>

#include <cmocka.h>

#include "payremind/keyword.h"
#include "payremind/metrics.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define THREADS 4
#define PER_THREAD 20000

/* metrics_write's output (caller frees). */
static char *
render(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	assert_int_equal(metrics_write(fp), 0);
	assert_int_equal(fclose(fp), 0);
	return buf;
}

/* The value of the sample line that starts with series followed by a space, or -1. */
static double
sample(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

static int
reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static void
test_counters_count_by_label_and_unknown_values_fall_into_other(void **state)
{
	static const struct {
		const char *series;
		double value;
	} want[] = {
		{ "payremind_sends_total{outcome=\"ok\"}", 2 },
		{ "payremind_sends_total{outcome=\"tempfail\"}", 1 },
		{ "payremind_sends_total{outcome=\"permfail\"}", 0 },
		{ "payremind_sends_total{outcome=\"config\"}", 1 },
		{ "payremind_inbound_total{keyword=\"stop\"}", 1 },
		{ "payremind_inbound_total{keyword=\"arret\"}", 2 },
		{ "payremind_inbound_total{keyword=\"other\"}", 2 },
		{ "payremind_dlrs_total{status=\"delivered\"}", 1 },
		{ "payremind_dlrs_total{status=\"smsc_reject\"}", 1 },
		{ "payremind_dlrs_total{status=\"other\"}", 1 },
		{ "payremind_webhook_responses_total{code=\"200\"}", 2 },
		{ "payremind_webhook_responses_total{code=\"401\"}", 1 },
		{ "payremind_webhook_responses_total{code=\"other\"}", 1 },
	};
	char *text;
	size_t i;

	(void)state;
	metrics_count_send(GW_OK);
	metrics_count_send(GW_OK);
	metrics_count_send(GW_TEMPFAIL);
	metrics_count_send(GW_CONFIG);
	metrics_count_send((enum gw_outcome)99); /* ignored */
	metrics_count_inbound(0);                /* STOP */
	metrics_count_inbound(1);                /* ARRET */
	metrics_count_inbound(1);
	metrics_count_inbound(-1);
	metrics_count_inbound(KEYWORD_COUNT);
	metrics_count_dlr(WEBHOOK_DLR_DELIVERED);
	metrics_count_dlr(WEBHOOK_DLR_SMSC_REJECT);
	metrics_count_dlr((enum webhook_dlr_status)42);
	metrics_count_response(200);
	metrics_count_response(200);
	metrics_count_response(401);
	metrics_count_response(418);
	text = render();
	for (i = 0; i < NELEM(want); i++) {
		print_message("series: %s\n", want[i].series);
		assert_true(sample(text, want[i].series) == want[i].value);
	}
	free(text);
}

static void
test_latency_histogram_is_cumulative_with_sum_and_count(void **state)
{
	static const double observed[] = { 0.005, 0.01, 0.2, 0.2, 3, 45, -1 };
	static const struct {
		const char *series;
		double value;
	} want[] = {
		{ "payremind_gateway_latency_seconds_bucket{le=\"0.01\"}", 3 }, /* 0.005, 0.01 and -1 as 0 */
		{ "payremind_gateway_latency_seconds_bucket{le=\"0.1\"}", 3 },
		{ "payremind_gateway_latency_seconds_bucket{le=\"0.25\"}", 5 },
		{ "payremind_gateway_latency_seconds_bucket{le=\"2.5\"}", 5 },
		{ "payremind_gateway_latency_seconds_bucket{le=\"5\"}", 6 },
		{ "payremind_gateway_latency_seconds_bucket{le=\"30\"}", 6 },
		{ "payremind_gateway_latency_seconds_bucket{le=\"+Inf\"}", 7 },
		{ "payremind_gateway_latency_seconds_count", 7 },
	};
	char *text;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(observed); i++)
		metrics_observe_latency(observed[i]);
	text = render();
	for (i = 0; i < NELEM(want); i++) {
		print_message("series: %s\n", want[i].series);
		assert_true(sample(text, want[i].series) == want[i].value);
	}
	assert_float_equal(sample(text, "payremind_gateway_latency_seconds_sum"), 48.415, 1e-6);
	free(text);
}

/* Every line is a comment (# HELP / # TYPE) or `name{label="value"} number`, and each family has its
 * HELP and TYPE before its samples. */
static void
test_output_is_prometheus_text_format(void **state)
{
	static const long long values[] = { 3, 0 };
	static const char *const keys[] = { "queued", "sent" };
	regex_t line;
	char *text, *buf = NULL, *save = NULL, *l;
	size_t len = 0;
	FILE *fp;
	int samples = 0;

	(void)state;
	metrics_count_send(GW_OK);
	text = render();
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(
	    metrics_write_gauge(fp, "payremind_reminders", "Reminders by state.", "state", keys, values, 2),
	    0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(
	    regcomp(&line, "^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\\{[a-z]+=\"[^\"]*\"\\})? [0-9.+eE-]+)$",
	        REG_EXTENDED | REG_NOSUB),
	    0);
	for (l = strtok_r(buf, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		print_message("line: %s\n", l);
		assert_int_equal(regexec(&line, l, 0, NULL, 0), 0);
		samples += l[0] != '#';
	}
	assert_true(samples > 40);
	assert_non_null(strstr(text, "# TYPE payremind_gateway_latency_seconds histogram\n"));
	assert_non_null(strstr(text, "# TYPE payremind_sends_total counter\n"));
	regfree(&line);
	free(text);
	free(buf);
}

static void
test_gauge_lines_follow_the_keys(void **state)
{
	static const char *const keys[] = { "keyword", "operator", "gateway" };
	static const long long values[] = { 4, 0, 12 };
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(fp);
	assert_int_equal(
	    metrics_write_gauge(fp, "payremind_opt_outs", "Opt-outs.", "source", keys, values, 3), 0);
	assert_int_equal(fclose(fp), 0);
	assert_string_equal(buf,
	    "# HELP payremind_opt_outs Opt-outs.\n# TYPE payremind_opt_outs gauge\n"
	    "payremind_opt_outs{source=\"keyword\"} 4\npayremind_opt_outs{source=\"operator\"} 0\n"
	    "payremind_opt_outs{source=\"gateway\"} 12\n");
	free(buf);
}

static void *
hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < PER_THREAD; i++) {
		metrics_count_send(GW_OK);
		metrics_observe_latency(0.001);
		metrics_count_dlr(WEBHOOK_DLR_DELIVERED);
	}
	return NULL;
}

static void
test_counts_from_many_threads_are_not_lost(void **state)
{
	pthread_t t[THREADS];
	char *text;
	int i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	text = render();
	assert_true(sample(text, "payremind_sends_total{outcome=\"ok\"}") == THREADS * PER_THREAD);
	assert_true(sample(text, "payremind_gateway_latency_seconds_count") == THREADS * PER_THREAD);
	assert_true(sample(text, "payremind_dlrs_total{status=\"delivered\"}") == THREADS * PER_THREAD);
	assert_float_equal(
	    sample(text, "payremind_gateway_latency_seconds_sum"), THREADS * PER_THREAD * 0.001, 1e-6);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(
		    test_counters_count_by_label_and_unknown_values_fall_into_other, reset),
		cmocka_unit_test_setup(test_latency_histogram_is_cumulative_with_sum_and_count, reset),
		cmocka_unit_test_setup(test_output_is_prometheus_text_format, reset),
		cmocka_unit_test_setup(test_gauge_lines_follow_the_keys, reset),
		cmocka_unit_test_setup(test_counts_from_many_threads_are_not_lost, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
