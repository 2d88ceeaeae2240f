/* Capped exponential backoff with jitter for transient gateway failures; pure. */
#ifndef PAYREMIND_BACKOFF_H
#define PAYREMIND_BACKOFF_H

#include <stdint.h>

/* Delay before attempt `attempt` + 1 after `attempt` failed ones (attempt >= 1):
 * d = min(cap_ms, base_ms * 2^(attempt-1)), then "equal jitter": d/2 + rnd * d/2, so the result lies
 * in [d/2, d]. rnd is in [0, 1) and injected by the caller. A retry_after_ms larger than that wins. */
int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, double rnd, int64_t retry_after_ms);

#endif
