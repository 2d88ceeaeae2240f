/* Circuit breaker for the gateway, with an injected clock; pure. Closed: send. Open: send nothing until
 * the cool-down ends. Half-open: one probe; its success closes the breaker, its failure re-opens it
 * for twice as long (capped). A Retry-After from the gateway opens it for that long. */
#ifndef PAYREMIND_BREAKER_H
#define PAYREMIND_BREAKER_H

#include <stdint.h>

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker {
	enum breaker_state state;
	int threshold;   /* consecutive failures that open it */
	int failures;    /* consecutive failures so far */
	int64_t open_ms; /* current cool-down */
	int64_t min_open_ms, max_open_ms;
	int64_t until_ms; /* end of the cool-down when open */
	int probing;      /* a probe is in flight (half-open) */
};

/* A closed breaker opening after `threshold` consecutive failures for min_open_ms, doubling to max_open_ms. */
void breaker_init(struct breaker *b, int threshold, int64_t min_open_ms, int64_t max_open_ms);
/* May a request start at now_ms? 0 = yes (in half-open, this request is the probe), else ms to wait
 * (-1 while a probe is in flight: wait for its answer). */
int64_t breaker_allow(struct breaker *b, int64_t now_ms);
/* The request breaker_allow let through did not start after all (no answer will be reported). */
void breaker_cancel(struct breaker *b);
/* Report an answer: ok = the gateway works (any answer that is not a transport failure, 5xx, 429 or 503). */
void breaker_result(struct breaker *b, int ok, int64_t now_ms);
/* The gateway asked us to wait (Retry-After): open until now_ms + wait_ms unless already open longer. */
void breaker_hold(struct breaker *b, int64_t wait_ms, int64_t now_ms);
/* "closed", "open" or "half-open". */
const char *breaker_state_to_text(enum breaker_state state);

#endif
