/* Capped exponential backoff with jitter for transient gateway failures; pure. */
#include "payremind/backoff.h"

/*
 * min(cap, base * 2^(attempt - 1)) without overflow; an attempt <= 1 gives min(cap, base)
 * (so 0 and negative attempts count as the first). It doubles at most 63 times, whatever the attempt.
 */
static int64_t
backoff_ceiling(int attempt, int64_t base_ms, int64_t cap_ms)
{
	int64_t d = base_ms;
	int i;

	for (i = 1; i < attempt && d > 0 && d < cap_ms; i++)
		d = d > cap_ms / 2 ? cap_ms : d * 2;
	return d < cap_ms ? d : cap_ms;
}

/*
 * "Equal jitter" (half fixed, half random): the fixed half keeps a minimum spacing between retries,
 * the random half spreads the retries of many reminders that failed together so they do not hit the
 * gateway again in one burst. A server's Retry-After is a floor, never shortened by our jitter.
 */
int64_t
backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double rnd, int64_t retry_after_ms)
{
	int64_t d, half, delay;

	if (!(rnd >= 0.0)) /* NaN included: converting it to an integer is undefined */
		rnd = 0.0;
	if (rnd > 1.0)
		rnd = 1.0;
	d = backoff_ceiling(attempt, base_ms, cap_ms);
	if (d < 0) /* a negative base or cap from a broken caller */
		d = 0;
	half = d / 2;
	delay = half + (int64_t)(rnd * (double)(d - half));
	if (delay > d) /* a delay near INT64_MAX loses precision as a double */
		delay = d;
	return retry_after_ms > delay ? retry_after_ms : delay;
}
