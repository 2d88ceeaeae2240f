/* Token bucket pacing: refill continuously at `rate`, spend a token per SMS segment. */
#include "payremind/ratelimit.h"

static void
ratelimit_refill(struct ratelimit *rl, int64_t now_us)
{
	if (now_us > rl->last_us) {
		rl->tokens += (double)(now_us - rl->last_us) * rl->rate / 1e6;
		if (rl->tokens > rl->burst)
			rl->tokens = rl->burst;
	}
	rl->last_us = now_us;
}

void
ratelimit_init(struct ratelimit *rl, double rate, double burst, int64_t now_us)
{
	rl->rate = rate;
	rl->burst = burst < 1.0 ? 1.0 : burst;
	rl->tokens = rl->burst;
	rl->last_us = now_us;
}

void
ratelimit_set_rate(struct ratelimit *rl, double rate, int64_t now_us)
{
	ratelimit_refill(rl, now_us);
	rl->rate = rate;
}

int64_t
ratelimit_take(struct ratelimit *rl, int64_t now_us)
{
	return ratelimit_take_n(rl, 1.0, now_us);
}

int64_t
ratelimit_take_n(struct ratelimit *rl, double cost, int64_t now_us)
{
	if (rl->rate <= 0.0)
		return 0;
	ratelimit_refill(rl, now_us);
	if (rl->tokens >= 1.0) {
		rl->tokens -= cost;
		return 0;
	}
	return (int64_t)((1.0 - rl->tokens) * 1e6 / rl->rate) + 1;
}
