/*
 * libFuzzer target: the listener's request router (route_match, and route_page for the payment page
 * under "/p/"). Input: the method on the first line,
 * then the request target as received (any bytes). Checks against SPEC §6 written out here: a route is
 * found only for one of its paths byte for byte up to the first '?', with its method (or HEAD where that
 * is allowed, never on a route that changes state); a wrong method is 405 with the route for its Allow
 * header; anything else is 404 with no route.
 */
#include <ctype.h>

#include "fuzz.h"
#include "payremind/route.h"

/* SPEC §6: path, method, kind, dialect. */
static const struct {
	const char *path, *method;
	enum route_kind kind;
	enum conf_dialect dialect;
} spec[] = {
	{ "/healthz", "GET", ROUTE_HEALTH, CONF_DIALECT_JSON },
	{ "/metrics", "GET", ROUTE_METRICS, CONF_DIALECT_JSON },
	{ "/v1/inbound/json", "POST", ROUTE_INBOUND, CONF_DIALECT_JSON },
	{ "/v1/inbound/kannel", "GET", ROUTE_INBOUND, CONF_DIALECT_KANNEL },
	{ "/v1/inbound/twilio", "POST", ROUTE_INBOUND, CONF_DIALECT_TWILIO },
	{ "/v1/dlr/json", "POST", ROUTE_DLR, CONF_DIALECT_JSON },
	{ "/v1/dlr/kannel", "GET", ROUTE_DLR, CONF_DIALECT_KANNEL },
	{ "/v1/dlr/twilio", "POST", ROUTE_DLR, CONF_DIALECT_TWILIO },
	{ "/v1/payments/json", "POST", ROUTE_PAYMENT, CONF_DIALECT_JSON },
};

static int
equal(const uint8_t *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* The route a request must get under SPEC §6, as route_match reports it. */
static void
check_route(const struct route *rt, size_t i, const uint8_t *method, size_t mlen, enum route_result r)
{
	int state_changing = spec[i].kind != ROUTE_HEALTH && spec[i].kind != ROUTE_METRICS;
	int ok = equal(method, mlen, spec[i].method) || (!state_changing && equal(method, mlen, "HEAD"));

	FUZZ_CHECK(rt != NULL && strcmp(rt->path, spec[i].path) == 0);
	FUZZ_CHECK(strcmp(rt->method, spec[i].method) == 0 && rt->kind == spec[i].kind &&
	    rt->dialect == spec[i].dialect);
	FUZZ_CHECK(!(state_changing && rt->head_ok));
	FUZZ_CHECK(rt->allow != NULL && strstr(rt->allow, rt->method) != NULL);
	FUZZ_CHECK(state_changing || rt->auth == ROUTE_AUTH_NONE);
	FUZZ_CHECK(!state_changing ||
	    rt->auth ==
	        (spec[i].kind == ROUTE_PAYMENT                   ? ROUTE_AUTH_PORTAL
	                : spec[i].dialect == CONF_DIALECT_TWILIO ? ROUTE_AUTH_TWILIO
	                                                         : ROUTE_AUTH_KEY));
	FUZZ_CHECK(r == (ok ? ROUTE_OK : ROUTE_METHOD_NOT_ALLOWED));
}

/* route_page under "/p/": only GET, HEAD and POST; a token exactly when the rest of the path is 22
 * base64url characters, and then that rest. */
static void
check_page(const uint8_t *m, size_t mlen, const uint8_t *t, size_t plen, size_t tlen)
{
	const struct route *rt = (const struct route *)1;
	char token[23] = "xx";
	enum route_result r = route_page("/p/", (const char *)m, mlen, (const char *)t, tlen, token, &rt);
	int under = plen >= 3 && memcmp(t, "/p/", 3) == 0, is_token = under && plen == 25, i;

	for (i = 3; is_token && i < 25; i++)
		is_token = isalnum(t[i]) || t[i] == '-' || t[i] == '_';
	if (!under) {
		FUZZ_CHECK(r == ROUTE_NOT_FOUND && rt == NULL && token[0] == '\0');
		return;
	}
	FUZZ_CHECK(rt != NULL && rt->kind == ROUTE_PAGE);
	FUZZ_CHECK(r ==
	    (equal(m, mlen, "GET") || equal(m, mlen, "HEAD") || equal(m, mlen, "POST")
	            ? ROUTE_OK
	            : ROUTE_METHOD_NOT_ALLOWED));
	if (r == ROUTE_OK && is_token)
		FUZZ_CHECK(strlen(token) == 22 && memcmp(token, t + 3, 22) == 0);
	else
		FUZZ_CHECK(token[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size), *q;
	size_t mlen = nl ? (size_t)(nl - data) : 0, tlen = size - (nl ? mlen + 1 : 0), plen, i;
	const uint8_t *target = nl ? nl + 1 : data;
	const struct route *rt = (const struct route *)1;
	enum route_result r;
	uint8_t *m = fuzz_xmalloc(mlen), *t = fuzz_xmalloc(tlen);

	/* exact-size copies: ASan catches a read past either one */
	memcpy(m, data, mlen);
	memcpy(t, target, tlen);
	r = route_match((const char *)m, mlen, (const char *)t, tlen, &rt);
	q = memchr(t, '?', tlen);
	plen = q ? (size_t)(q - t) : tlen;
	for (i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
		if (equal(t, plen, spec[i].path))
			break;
	}
	if (i == sizeof(spec) / sizeof(spec[0]))
		FUZZ_CHECK(r == ROUTE_NOT_FOUND && rt == NULL);
	else
		check_route(rt, i, m, mlen, r);
	check_page(m, mlen, t, plen, tlen);
	free(m);
	free(t);
	return 0;
}
