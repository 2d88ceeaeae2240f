/* The listener's request router (SPEC §6), pure: method + request target as received -> a route, or
 * 404 / 405. No libmicrohttpd, no I/O: the listener, the unit test and a fuzzer call the same function. */
#ifndef PAYREMIND_ROUTE_H
#define PAYREMIND_ROUTE_H

#include <stddef.h>

#include "payremind/conf.h"

enum route_kind { ROUTE_HEALTH, ROUTE_METRICS, ROUTE_INBOUND, ROUTE_DLR, ROUTE_PAGE, ROUTE_PAYMENT };

enum route_auth {
	ROUTE_AUTH_NONE,   /* /healthz, /metrics */
	ROUTE_AUTH_KEY,    /* X-Payremind-Key (kannel routes: also the `key` query parameter) */
	ROUTE_AUTH_TWILIO, /* X-Twilio-Signature */
	ROUTE_AUTH_PORTAL, /* X-Payremind-Signature: HMAC-SHA256 of the body with checkout.secret_file */
	ROUTE_AUTH_PAGE,   /* none: whoever holds the link */
};

/* One endpoint: the only method that may use it (HEAD too only where head_ok: never on a route that
 * changes state), who may call it and what it does. */
struct route {
	const char *path;
	const char *method;
	int head_ok;
	const char *allow; /* the Allow header of its 405 */
	enum route_auth auth;
	enum route_kind kind;
	enum conf_dialect dialect;
};

/* What route_match decided, as the HTTP status the listener answers when it is not ROUTE_OK. */
enum route_result { ROUTE_OK = 200, ROUTE_NOT_FOUND = 404, ROUTE_METHOD_NOT_ALLOWED = 405 };

/*
 * Route a request. method[0..method_len) is the request method (case-sensitive, RFC 9110);
 * target[0..target_len) is the request target exactly as received, before any percent-decoding, query
 * included. The path (the target up to the first '?') must equal a route's path byte for byte: a
 * percent-escape, a NUL or any other byte makes it 404, so "/v1/inbound/json%00" is never
 * "/v1/inbound/json". ROUTE_OK with *out the route; ROUTE_METHOD_NOT_ALLOWED with *out the route (for
 * its Allow header); ROUTE_NOT_FOUND with *out NULL. Any bytes are safe to pass (a fuzzer's input).
 */
enum route_result route_match(
    const char *method, size_t method_len, const char *target, size_t target_len, const struct route **out);

/*
 * Route a payment page request: the path (target up to '?') is prefix (token.base_url's path, ending
 * with '/') + the rest. GET and HEAD show the page, POST spends the link: ROUTE_OK with *out the page
 * route and token set to the rest when it is a token's 22 base64url characters, else to "" (the page
 * for an unknown link). ROUTE_METHOD_NOT_ALLOWED for another method, ROUTE_NOT_FOUND (*out NULL) when
 * the path is not under prefix. Any bytes are safe to pass.
 */
enum route_result route_page(const char *prefix, const char *method, size_t method_len, const char *target,
    size_t target_len, char token[23], const struct route **out);

#endif
