/* Token bucket pacing with an injected clock; pure. */
#ifndef PAYREMIND_RATELIMIT_H
#define PAYREMIND_RATELIMIT_H

#include <stdint.h>

/* The bucket size the daemon uses: one token plus 20 ms worth. The loop's timers wake up to a
 * millisecond late; without the slack each late wake-up would lose time and the rate would fall short
 * (91/s instead of 100/s), and above 1000/s it could not be reached at all. */
#define RATELIMIT_BURST(rate) (1.0 + (rate) / 50.0)

struct ratelimit {
	double rate;  /* tokens per second; 0 = unlimited */
	double burst; /* bucket size */
	double tokens;
	int64_t last_us; /* clock of the last refill */
};

/* A bucket of `rate` per second holding at most `burst` tokens (at least 1), starting full at now_us. */
void ratelimit_init(struct ratelimit *rl, double rate, double burst, int64_t now_us);
/* Change the rate (the instance's share of the global rate) keeping the tokens already earned. */
void ratelimit_set_rate(struct ratelimit *rl, double rate, int64_t now_us);
/* Take one token: 0 when granted, else the microseconds to wait before one is available. */
int64_t ratelimit_take(struct ratelimit *rl, int64_t now_us);
/* Take cost tokens (an SMS of cost segments): granted as soon as the bucket holds one token, going into
 * debt for the rest, which the next grant waits for: over time the rate holds in tokens whatever each
 * cost, and the bucket keeps its slack for late timers. 0 when granted, else the microseconds to wait. */
int64_t ratelimit_take_n(struct ratelimit *rl, double cost, int64_t now_us);

#endif
