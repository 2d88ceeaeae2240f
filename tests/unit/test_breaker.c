/* Circuit breaker: opens after consecutive failures, probes once, closes or backs off, honours holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "payremind/breaker.h"

/* One step of a scripted scenario: at time t, either ask (expect the allow answer) or report. */
struct step {
	int64_t t;
	enum { ASK, OK, FAIL, HOLD, CANCEL } op;
	int64_t arg; /* ASK: expected breaker_allow; HOLD: wait ms */
	enum breaker_state after;
};

static void
run(const struct step *steps, size_t n)
{
	struct breaker b;
	size_t i;

	breaker_init(&b, 3, 1000, 4000);
	for (i = 0; i < n; i++) {
		const struct step *s = &steps[i];

		switch (s->op) {
		case ASK:
			assert_int_equal(breaker_allow(&b, s->t), s->arg);
			break;
		case OK:
			breaker_result(&b, 1, s->t);
			break;
		case FAIL:
			breaker_result(&b, 0, s->t);
			break;
		case HOLD:
			breaker_hold(&b, s->arg, s->t);
			break;
		case CANCEL:
			breaker_cancel(&b);
			break;
		}
		assert_int_equal(b.state, s->after);
	}
}

static void
test_opens_after_threshold_and_recovers_through_a_probe(void **state)
{
	static const struct step steps[] = {
		{ 0, FAIL, 0, BREAKER_CLOSED },
		{ 1, FAIL, 0, BREAKER_CLOSED },
		{ 2, OK, 0, BREAKER_CLOSED }, /* success resets the count */
		{ 3, FAIL, 0, BREAKER_CLOSED },
		{ 4, FAIL, 0, BREAKER_CLOSED },
		{ 5, FAIL, 0, BREAKER_OPEN },           /* third in a row */
		{ 6, ASK, 999, BREAKER_OPEN },          /* no sending while open */
		{ 1005, ASK, 0, BREAKER_HALF_OPEN },    /* the probe */
		{ 1006, ASK, -1, BREAKER_HALF_OPEN },   /* nobody else while it runs */
		{ 1007, CANCEL, 0, BREAKER_HALF_OPEN }, /* it never started: */
		{ 1008, ASK, 0, BREAKER_HALF_OPEN },    /* the next request is the probe */
		{ 1010, OK, 0, BREAKER_CLOSED },
		{ 1011, ASK, 0, BREAKER_CLOSED },
	};

	(void)state;
	run(steps, sizeof(steps) / sizeof(steps[0]));
}

static void
test_failed_probes_double_the_cool_down_up_to_the_cap(void **state)
{
	static const struct step steps[] = {
		{ 0, FAIL, 0, BREAKER_CLOSED },
		{ 0, FAIL, 0, BREAKER_CLOSED },
		{ 0, FAIL, 0, BREAKER_OPEN },
		{ 1000, ASK, 0, BREAKER_HALF_OPEN },
		{ 1000, FAIL, 0, BREAKER_OPEN }, /* 2 s now */
		{ 2999, ASK, 1, BREAKER_OPEN },
		{ 3000, ASK, 0, BREAKER_HALF_OPEN },
		{ 3000, FAIL, 0, BREAKER_OPEN }, /* 4 s */
		{ 7000, ASK, 0, BREAKER_HALF_OPEN },
		{ 7000, FAIL, 0, BREAKER_OPEN }, /* capped at 4 s */
		{ 10999, ASK, 1, BREAKER_OPEN },
		{ 11000, ASK, 0, BREAKER_HALF_OPEN },
		{ 11000, OK, 0, BREAKER_CLOSED },
	};

	(void)state;
	run(steps, sizeof(steps) / sizeof(steps[0]));
}

static void
test_retry_after_holds_sending(void **state)
{
	static const struct step steps[] = {
		{ 0, HOLD, 5000, BREAKER_OPEN },
		{ 100, ASK, 4900, BREAKER_OPEN },
		{ 200, HOLD, 1000, BREAKER_OPEN }, /* a shorter hold does not shorten it */
		{ 300, ASK, 4700, BREAKER_OPEN },
		{ 5000, ASK, 0, BREAKER_HALF_OPEN },
		{ 5001, OK, 0, BREAKER_CLOSED },
	};

	(void)state;
	run(steps, sizeof(steps) / sizeof(steps[0]));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_opens_after_threshold_and_recovers_through_a_probe),
		cmocka_unit_test(test_failed_probes_double_the_cool_down_up_to_the_cap),
		cmocka_unit_test(test_retry_after_holds_sending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
