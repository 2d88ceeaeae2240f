/* Unit tests of backoff.c: equal-jitter bounds, the cap, overflow safety, growth, Retry-After. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "payremind/backoff.h"

#define RND_TOP 0.999999

/* lo is the delay with rnd 0 (d/2), hi with rnd RND_TOP (just under d). */
static const struct {
	const char *what;
	int attempt;
	int64_t base, cap;
	int64_t lo, hi;
} bound_cases[] = {
	{ "first retry", 1, 1000, 60000, 500, 999 },
	{ "second doubles", 2, 1000, 60000, 1000, 1999 },
	{ "third doubles again", 3, 1000, 60000, 2000, 3999 },
	{ "sixth, still under the cap", 6, 1000, 60000, 16000, 31999 },
	{ "seventh reaches the cap", 7, 1000, 60000, 30000, 59999 },
	{ "far past the cap", 100, 1000, 60000, 30000, 59999 },
	{ "INT_MAX attempts", INT_MAX, 1000, 60000, 30000, 59999 },
	{ "attempt 0 counts as 1", 0, 1000, 60000, 500, 999 },
	{ "negative attempt counts as 1", -5, 1000, 60000, 500, 999 },
	{ "cap below base", 1, 5000, 1000, 500, 999 },
	{ "odd delay", 1, 3, 1000, 1, 2 },
	{ "zero base", INT_MAX, 0, 60000, 0, 0 },
	{ "doubling would overflow int64", 70, 1000, INT64_MAX, INT64_MAX / 2, 9223367425168757247 },
};

static void
delay_lies_between_half_and_full_step(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bound_cases) / sizeof(bound_cases[0]); i++) {
		int a = bound_cases[i].attempt;
		int64_t b = bound_cases[i].base, c = bound_cases[i].cap;

		print_message("case: %s\n", bound_cases[i].what);
		assert_int_equal(backoff_delay_ms(a, b, c, 0.0, 0), bound_cases[i].lo);
		assert_int_equal(backoff_delay_ms(a, b, c, RND_TOP, 0), bound_cases[i].hi);
		assert_true(backoff_delay_ms(a, b, c, 0.5, 0) >= bound_cases[i].lo);
		assert_true(backoff_delay_ms(a, b, c, 0.5, 0) <= bound_cases[i].hi);
	}
}

static void
upper_bound_grows_monotonically_to_the_cap(void **state)
{
	int64_t prev = 0, d;
	int a;

	(void)state;
	for (a = 1; a <= 200; a++) {
		d = backoff_delay_ms(a, 250, 3600000, RND_TOP, 0);
		assert_true(d >= prev);
		assert_true(d < 3600000);
		prev = d;
	}
	assert_int_equal(backoff_delay_ms(200, 250, 3600000, 0.0, 0), 1800000);
}

/* Values outside the contract are clamped rather than trusted; no Retry-After (-1) hides a negative delay. */
static const struct {
	const char *what;
	int attempt;
	int64_t base, cap;
	double rnd;
	int64_t want;
} clamp_cases[] = {
	{ "negative rnd acts as 0", 1, 1000, 60000, -0.5, 500 },
	{ "NaN rnd acts as 0", 1, 1000, 60000, NAN, 500 },
	{ "rnd far above 1 acts as 1", 1, 1000, 60000, 1e300, 1000 },
	{ "negative base means no delay", 100, -1000, 60000, 0.5, 0 },
	{ "negative cap means no delay", 5, 1000, -1, 0.5, 0 },
	{ "a huge cap that a double rounds up is still the maximum", 100, 1000, (INT64_C(1) << 62) + 600, 1.0,
	    (INT64_C(1) << 62) + 600 },
};

static void
out_of_contract_inputs_stay_within_bounds(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(clamp_cases) / sizeof(clamp_cases[0]); i++) {
		print_message("case: %s\n", clamp_cases[i].what);
		assert_int_equal(backoff_delay_ms(clamp_cases[i].attempt, clamp_cases[i].base,
		                     clamp_cases[i].cap, clamp_cases[i].rnd, -1),
		    clamp_cases[i].want);
	}
}

static const struct {
	const char *what;
	int64_t retry_after;
	int64_t want;
} retry_cases[] = {
	{ "no Retry-After", 0, 2000 },
	{ "negative Retry-After ignored", -1, 2000 },
	{ "shorter Retry-After loses", 1500, 2000 },
	{ "longer Retry-After wins", 5000, 5000 },
	{ "Retry-After wins over the cap", 600000, 600000 },
};

static void
retry_after_wins_when_longer(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(retry_cases) / sizeof(retry_cases[0]); i++) {
		print_message("case: %s\n", retry_cases[i].what);
		assert_int_equal(
		    backoff_delay_ms(3, 1000, 60000, 0.0, retry_cases[i].retry_after), retry_cases[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delay_lies_between_half_and_full_step),
		cmocka_unit_test(upper_bound_grows_monotonically_to_the_cap),
		cmocka_unit_test(retry_after_wins_when_longer),
		cmocka_unit_test(out_of_contract_inputs_stay_within_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
