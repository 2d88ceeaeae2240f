/* Token bucket: the long-run rate, the per-second ceiling, and rate changes, on a simulated clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "payremind/ratelimit.h"

/* A greedy sender on a simulated clock: take a token whenever one is granted, else sleep as told
 * (rounded up to the loop's millisecond timers). Counts grants per simulated second. */
static long
simulate(double rate, int seconds, long per_second[])
{
	struct ratelimit rl;
	int64_t now = 0, end = (int64_t)seconds * 1000000, wait;
	long total = 0;

	ratelimit_init(&rl, rate, RATELIMIT_BURST(rate), now);
	while (now < end) {
		if ((wait = ratelimit_take(&rl, now)) == 0) {
			per_second[now / 1000000]++;
			total++;
			continue;
		}
		now += (wait + 999) / 1000 * 1000;
	}
	return total;
}

static void
test_rate_is_exact_over_a_minute_and_no_second_goes_over(void **state)
{
	static const double rates[] = { 1.0, 7.5, 30.0, 100.0, 999.0, 5000.0 };
	size_t i;
	int s;

	(void)state;
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		long per[60] = { 0 }, total = simulate(rates[i], 60, per);

		assert_true(total >= (long)(rates[i] * 60 * 0.99));
		assert_true(total <= (long)(rates[i] * 60 * 1.01) + 1);
		for (s = 0; s < 60; s++)
			assert_true(per[s] <= (long)(rates[i] * 1.05) + 1);
	}
}

/* SMS of 1, 2 and 3 segments in turn against a rate in segments per second: the segments granted per
 * simulated second stay at the rate (a message larger than the bucket goes once the bucket is full, in
 * debt), and the long run gives the rate in segments, not in messages. */
static void
test_multi_segment_messages_keep_the_rate_in_segments(void **state)
{
	static const double rates[] = { 10.0, 30.0, 100.0 };
	size_t i;
	int s;

	(void)state;
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct ratelimit rl;
		int64_t now = 0, end = 60 * 1000000LL, wait;
		long per[61] = { 0 }, total = 0, msgs = 0;
		int cost;

		ratelimit_init(&rl, rates[i], RATELIMIT_BURST(rates[i]), now);
		while (now < end) {
			cost = 1 + (int)(msgs % 3);
			if ((wait = ratelimit_take_n(&rl, cost, now)) == 0) {
				per[now / 1000000] += cost;
				total += cost;
				msgs++;
				continue;
			}
			now += (wait + 999) / 1000 * 1000;
		}
		assert_true(total >= (long)(rates[i] * 60 * 0.98));
		assert_true(total <= (long)(rates[i] * 60 * 1.01) + 3);
		/* the messages: the average cost is 2 segments, so half the segment rate */
		assert_true(msgs >= (long)(rates[i] * 60 / 2 * 0.98));
		assert_true(msgs <= (long)(rates[i] * 60 / 2 * 1.02) + 2);
		for (s = 0; s < 60; s++)
			assert_true(per[s] <= (long)(rates[i] * 1.05) + 3);
	}
}

static void
test_zero_rate_means_unlimited(void **state)
{
	struct ratelimit rl;
	int i;

	(void)state;
	ratelimit_init(&rl, 0.0, 1.0, 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(ratelimit_take(&rl, 0), 0);
}

static void
test_wait_is_the_time_to_the_next_token(void **state)
{
	struct ratelimit rl;

	(void)state;
	ratelimit_init(&rl, 100.0, 1.0, 0);
	assert_int_equal(ratelimit_take(&rl, 0), 0);
	assert_in_range(ratelimit_take(&rl, 0), 9990, 10001);
	assert_in_range(ratelimit_take(&rl, 5000), 4990, 5001);
	assert_int_equal(ratelimit_take(&rl, 10000), 0);
}

static void
test_a_shared_rate_halves_the_pace(void **state)
{
	struct ratelimit rl;
	int64_t now = 0;
	long n = 0;

	(void)state;
	ratelimit_init(&rl, 100.0, 1.0, 0);
	ratelimit_set_rate(&rl, 50.0, 0); /* a second daemon joined */
	while (now < 10000000) {
		int64_t w = ratelimit_take(&rl, now);

		if (w == 0)
			n++;
		else
			now += w;
	}
	assert_in_range(n, 495, 505);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_is_exact_over_a_minute_and_no_second_goes_over),
		cmocka_unit_test(test_multi_segment_messages_keep_the_rate_in_segments),
		cmocka_unit_test(test_zero_rate_means_unlimited),
		cmocka_unit_test(test_wait_is_the_time_to_the_next_token),
		cmocka_unit_test(test_a_shared_rate_halves_the_pace),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
