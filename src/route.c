/* The listener's request router, pure: the table of SPEC §6 endpoints and the match. */
#include <string.h>

#include "payremind/route.h"

#define ROUTE_NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* SPEC §6. Only the named method changes state; HEAD is allowed where it cannot (health, metrics). */
static const struct route route_table[] = {
	{ "/healthz", "GET", 1, "GET, HEAD", ROUTE_AUTH_NONE, ROUTE_HEALTH, CONF_DIALECT_JSON },
	{ "/metrics", "GET", 1, "GET, HEAD", ROUTE_AUTH_NONE, ROUTE_METRICS, CONF_DIALECT_JSON },
	{ "/v1/inbound/json", "POST", 0, "POST", ROUTE_AUTH_KEY, ROUTE_INBOUND, CONF_DIALECT_JSON },
	{ "/v1/inbound/kannel", "GET", 0, "GET", ROUTE_AUTH_KEY, ROUTE_INBOUND, CONF_DIALECT_KANNEL },
	{ "/v1/inbound/twilio", "POST", 0, "POST", ROUTE_AUTH_TWILIO, ROUTE_INBOUND, CONF_DIALECT_TWILIO },
	{ "/v1/dlr/json", "POST", 0, "POST", ROUTE_AUTH_KEY, ROUTE_DLR, CONF_DIALECT_JSON },
	{ "/v1/dlr/kannel", "GET", 0, "GET", ROUTE_AUTH_KEY, ROUTE_DLR, CONF_DIALECT_KANNEL },
	{ "/v1/dlr/twilio", "POST", 0, "POST", ROUTE_AUTH_TWILIO, ROUTE_DLR, CONF_DIALECT_TWILIO },
	{ "/v1/payments/json", "POST", 0, "POST", ROUTE_AUTH_PORTAL, ROUTE_PAYMENT, CONF_DIALECT_JSON },
};

/* SPEC §10: the page at token.base_url's path. GET and HEAD never spend the link; POST does. */
static const struct route route_page_route = { "(token.base_url)", "GET", 1, "GET, HEAD, POST",
	ROUTE_AUTH_PAGE, ROUTE_PAGE, CONF_DIALECT_JSON };

/* 1 when s[0..len) is exactly the C string lit. */
static int
route_equal(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

enum route_result
route_match(
    const char *method, size_t method_len, const char *target, size_t target_len, const struct route **out)
{
	const char *q = target != NULL ? memchr(target, '?', target_len) : NULL;
	size_t path_len = q != NULL ? (size_t)(q - target) : target_len;
	size_t i;

	*out = NULL;
	if (target == NULL || method == NULL)
		return ROUTE_NOT_FOUND;
	for (i = 0; i < ROUTE_NELEM(route_table); i++) {
		const struct route *rt = &route_table[i];

		if (!route_equal(target, path_len, rt->path))
			continue;
		*out = rt;
		if (route_equal(method, method_len, rt->method) ||
		    (rt->head_ok && route_equal(method, method_len, "HEAD")))
			return ROUTE_OK;
		return ROUTE_METHOD_NOT_ALLOWED;
	}
	return ROUTE_NOT_FOUND;
}

enum route_result
route_page(const char *prefix, const char *method, size_t method_len, const char *target, size_t target_len,
    char token[23], const struct route **out)
{
	const char *q = target != NULL ? memchr(target, '?', target_len) : NULL;
	size_t path_len = q != NULL ? (size_t)(q - target) : target_len,
	       plen = prefix != NULL ? strlen(prefix) : 0;
	size_t rest, i;

	*out = NULL;
	token[0] = '\0';
	if (target == NULL || method == NULL || plen == 0 || path_len < plen ||
	    memcmp(target, prefix, plen) != 0)
		return ROUTE_NOT_FOUND;
	*out = &route_page_route;
	if (!route_equal(method, method_len, "GET") && !route_equal(method, method_len, "HEAD") &&
	    !route_equal(method, method_len, "POST"))
		return ROUTE_METHOD_NOT_ALLOWED;
	rest = path_len - plen;
	for (i = 0; i < rest; i++) {
		char ch = target[plen + i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		        ch == '-' || ch == '_'))
			return ROUTE_OK;
	}
	if (rest == 22) {
		memcpy(token, target + plen, 22);
		token[22] = '\0';
	}
	return ROUTE_OK;
}
