/* Circuit breaker for the gateway: stop sending when it keeps failing, probe, then resume. */
#include "payremind/breaker.h"

void
breaker_init(struct breaker *b, int threshold, int64_t min_open_ms, int64_t max_open_ms)
{
	*b = (struct breaker){ .state = BREAKER_CLOSED,
		.threshold = threshold < 1 ? 1 : threshold,
		.open_ms = min_open_ms,
		.min_open_ms = min_open_ms,
		.max_open_ms = max_open_ms };
}

static void
breaker_open(struct breaker *b, int64_t now_ms)
{
	b->state = BREAKER_OPEN;
	b->until_ms = now_ms + b->open_ms;
	b->probing = 0;
}

int64_t
breaker_allow(struct breaker *b, int64_t now_ms)
{
	switch (b->state) {
	case BREAKER_CLOSED:
		return 0;
	case BREAKER_OPEN:
		if (now_ms < b->until_ms)
			return b->until_ms - now_ms;
		b->state = BREAKER_HALF_OPEN;
		b->probing = 0;
		/* FALLTHROUGH */
	case BREAKER_HALF_OPEN:
		if (b->probing)
			return -1;
		b->probing = 1;
		return 0;
	}
	return 0;
}

void
breaker_cancel(struct breaker *b)
{
	if (b->state == BREAKER_HALF_OPEN)
		b->probing = 0;
}

void
breaker_result(struct breaker *b, int ok, int64_t now_ms)
{
	if (ok) {
		b->failures = 0;
		if (b->state == BREAKER_HALF_OPEN) {
			b->state = BREAKER_CLOSED;
			b->open_ms = b->min_open_ms;
			b->probing = 0;
		}
		return;
	}
	b->failures++;
	if (b->state == BREAKER_HALF_OPEN) {
		b->open_ms = b->open_ms * 2 > b->max_open_ms ? b->max_open_ms : b->open_ms * 2;
		breaker_open(b, now_ms);
	} else if (b->state == BREAKER_CLOSED && b->failures >= b->threshold)
		breaker_open(b, now_ms);
}

void
breaker_hold(struct breaker *b, int64_t wait_ms, int64_t now_ms)
{
	if (wait_ms <= 0)
		return;
	if (b->state == BREAKER_OPEN && b->until_ms >= now_ms + wait_ms)
		return;
	b->state = BREAKER_OPEN;
	b->until_ms = now_ms + wait_ms;
	b->probing = 0;
}

const char *
breaker_state_to_text(enum breaker_state state)
{
	switch (state) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half-open";
	}
	return "?";
}
