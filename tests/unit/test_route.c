/* Unit tests of route.c: the listener's router, method + request target as received -> route, 404 or 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/route.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *method;
	const char *target;
	size_t len; /* 0: strlen(target) (for targets with a NUL in them) */
	enum route_result want;
	const char *path; /* the route found (NULL for 404) */
} cases[] = {
	{ "GET", "/healthz", 0, ROUTE_OK, "/healthz" },
	{ "HEAD", "/healthz", 0, ROUTE_OK, "/healthz" },
	{ "GET", "/metrics", 0, ROUTE_OK, "/metrics" },
	{ "HEAD", "/metrics", 0, ROUTE_OK, "/metrics" },
	{ "POST", "/v1/inbound/json", 0, ROUTE_OK, "/v1/inbound/json" },
	{ "GET", "/v1/inbound/kannel?from=1&text=STOP", 0, ROUTE_OK, "/v1/inbound/kannel" },
	{ "POST", "/v1/inbound/twilio", 0, ROUTE_OK, "/v1/inbound/twilio" },
	{ "POST", "/v1/dlr/json", 0, ROUTE_OK, "/v1/dlr/json" },
	{ "GET", "/v1/dlr/kannel?ref=x&status=1", 0, ROUTE_OK, "/v1/dlr/kannel" },
	{ "POST", "/v1/dlr/twilio?ref=0b6c7d5e-8f90-4a1b-9c2d-3e4f5a6b7c8d", 0, ROUTE_OK, "/v1/dlr/twilio" },
	{ "GET", "/healthz?", 0, ROUTE_OK, "/healthz" },
	/* HEAD never reaches a route that changes state */
	{ "HEAD", "/v1/inbound/kannel?text=STOP", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/kannel" },
	{ "HEAD", "/v1/dlr/kannel?ref=x&status=1", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/dlr/kannel" },
	{ "HEAD", "/v1/inbound/json", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/json" },
	{ "GET", "/v1/inbound/json", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/json" },
	{ "POST", "/v1/inbound/kannel", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/kannel" },
	{ "PUT", "/v1/dlr/json", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/dlr/json" },
	{ "DELETE", "/healthz", 0, ROUTE_METHOD_NOT_ALLOWED, "/healthz" },
	{ "get", "/healthz", 0, ROUTE_METHOD_NOT_ALLOWED, "/healthz" }, /* methods are case-sensitive */
	{ "POS", "/v1/inbound/json", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/json" },
	{ "POSTX", "/v1/inbound/json", 0, ROUTE_METHOD_NOT_ALLOWED, "/v1/inbound/json" },
	{ "", "/healthz", 0, ROUTE_METHOD_NOT_ALLOWED, "/healthz" },
	/* the path is compared as received: no decoding, no NUL, no prefix, no trailing slash */
	{ "POST", "/v1/inbound/json%00", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/json\0", 17, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/json\0/x", 19, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/%6Ason", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/json/", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/jso", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/json;x", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/inbound/json#x", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "//v1/inbound/json", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "/v1/../v1/inbound/json", 0, ROUTE_NOT_FOUND, NULL },
	{ "POST", "http://host/v1/inbound/json", 0, ROUTE_NOT_FOUND, NULL },
	{ "GET", "/HEALTHZ", 0, ROUTE_NOT_FOUND, NULL },
	{ "GET", "/", 0, ROUTE_NOT_FOUND, NULL },
	{ "GET", "", 0, ROUTE_NOT_FOUND, NULL },
	{ "GET", "?/healthz", 0, ROUTE_NOT_FOUND, NULL },
	{ "GET", "/nope", 0, ROUTE_NOT_FOUND, NULL },
};

static void
test_router_decides_route_404_or_405(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].target);
		const struct route *rt = (const struct route *)&cases[i];

		print_message("case: %s %s\n", cases[i].method, cases[i].target);
		assert_int_equal(
		    route_match(cases[i].method, strlen(cases[i].method), cases[i].target, len, &rt),
		    cases[i].want);
		if (cases[i].path == NULL) {
			assert_null(rt);
		} else {
			assert_non_null(rt);
			assert_string_equal(rt->path, cases[i].path);
		}
	}
}

/* What each route is: auth, kind, dialect and the Allow header of its 405. */
static void
test_routes_carry_auth_kind_dialect_and_allow(void **state)
{
	static const struct {
		const char *method, *target;
		enum route_auth auth;
		enum route_kind kind;
		enum conf_dialect dialect;
		const char *allow;
	} want[] = {
		{ "GET", "/healthz", ROUTE_AUTH_NONE, ROUTE_HEALTH, CONF_DIALECT_JSON, "GET, HEAD" },
		{ "GET", "/metrics", ROUTE_AUTH_NONE, ROUTE_METRICS, CONF_DIALECT_JSON, "GET, HEAD" },
		{ "POST", "/v1/inbound/json", ROUTE_AUTH_KEY, ROUTE_INBOUND, CONF_DIALECT_JSON, "POST" },
		{ "GET", "/v1/inbound/kannel", ROUTE_AUTH_KEY, ROUTE_INBOUND, CONF_DIALECT_KANNEL, "GET" },
		{ "POST", "/v1/inbound/twilio", ROUTE_AUTH_TWILIO, ROUTE_INBOUND, CONF_DIALECT_TWILIO,
		    "POST" },
		{ "POST", "/v1/dlr/json", ROUTE_AUTH_KEY, ROUTE_DLR, CONF_DIALECT_JSON, "POST" },
		{ "GET", "/v1/dlr/kannel", ROUTE_AUTH_KEY, ROUTE_DLR, CONF_DIALECT_KANNEL, "GET" },
		{ "POST", "/v1/dlr/twilio", ROUTE_AUTH_TWILIO, ROUTE_DLR, CONF_DIALECT_TWILIO, "POST" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(want); i++) {
		const struct route *rt;

		assert_int_equal(route_match(want[i].method, strlen(want[i].method), want[i].target,
		                     strlen(want[i].target), &rt),
		    ROUTE_OK);
		assert_int_equal(rt->auth, want[i].auth);
		assert_int_equal(rt->kind, want[i].kind);
		assert_int_equal(rt->dialect, want[i].dialect);
		assert_string_equal(rt->allow, want[i].allow);
		assert_int_equal(rt->head_ok, rt->kind == ROUTE_HEALTH || rt->kind == ROUTE_METRICS);
	}
}

/* NULL or empty input is a 404, not a crash (a fuzzer's first inputs). */
static void
test_router_takes_empty_and_null_input(void **state)
{
	const struct route *rt = (const struct route *)1;

	(void)state;
	assert_int_equal(route_match(NULL, 0, "/healthz", 8, &rt), ROUTE_NOT_FOUND);
	assert_null(rt);
	assert_int_equal(route_match("GET", 3, NULL, 0, &rt), ROUTE_NOT_FOUND);
	assert_int_equal(route_match("", 0, "", 0, &rt), ROUTE_NOT_FOUND);
}

/* The payment page: GET, HEAD and POST under the prefix; a token only when the rest is one. */
static void
test_page_routes_by_prefix_and_takes_only_a_token(void **state)
{
	static const struct {
		const char *method, *target;
		enum route_result want;
		const char *token;
	} pages[] = {
		{ "GET", "/p/AbCdEfGhIjKlMnOpQrSt_-", ROUTE_OK, "AbCdEfGhIjKlMnOpQrSt_-" },
		{ "HEAD", "/p/AbCdEfGhIjKlMnOpQrSt_-", ROUTE_OK, "AbCdEfGhIjKlMnOpQrSt_-" },
		{ "POST", "/p/AbCdEfGhIjKlMnOpQrSt_-?lang=en", ROUTE_OK, "AbCdEfGhIjKlMnOpQrSt_-" },
		{ "GET", "/p/AbCdEfGhIjKlMnOpQrSt_", ROUTE_OK, "" },    /* 21 characters */
		{ "GET", "/p/AbCdEfGhIjKlMnOpQrSt_-x", ROUTE_OK, "" },  /* 23 */
		{ "GET", "/p/AbCdEfGhIjKlMnOpQrS%74_-", ROUTE_OK, "" }, /* escaped */
		{ "GET", "/p/AbCdEfGhIjKlMnOpQrSt_-/", ROUTE_OK, "" },
		{ "GET", "/p/", ROUTE_OK, "" },
		{ "PUT", "/p/AbCdEfGhIjKlMnOpQrSt_-", ROUTE_METHOD_NOT_ALLOWED, "" },
		{ "GET", "/p", ROUTE_NOT_FOUND, "" },
		{ "GET", "/q/AbCdEfGhIjKlMnOpQrSt_-", ROUTE_NOT_FOUND, "" },
		{ "GET", "/P/AbCdEfGhIjKlMnOpQrSt_-", ROUTE_NOT_FOUND, "" },
	};
	const struct route *rt;
	char token[23];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(pages); i++) {
		print_message("case: %s %s\n", pages[i].method, pages[i].target);
		assert_int_equal(route_page("/p/", pages[i].method, strlen(pages[i].method), pages[i].target,
		                     strlen(pages[i].target), token, &rt),
		    pages[i].want);
		assert_string_equal(token, pages[i].token);
		if (pages[i].want == ROUTE_NOT_FOUND)
			assert_null(rt);
		else
			assert_true(rt->kind == ROUTE_PAGE && rt->auth == ROUTE_AUTH_PAGE);
	}
	assert_int_equal(route_page(NULL, "GET", 3, "/p/x", 4, token, &rt), ROUTE_NOT_FOUND);
	assert_int_equal(route_page("/p/", "GET", 3, NULL, 0, token, &rt), ROUTE_NOT_FOUND);
	/* the portal's results: POST only, signed */
	assert_int_equal(route_match("POST", 4, "/v1/payments/json", 17, &rt), ROUTE_OK);
	assert_true(rt->kind == ROUTE_PAYMENT && rt->auth == ROUTE_AUTH_PORTAL);
	assert_int_equal(route_match("HEAD", 4, "/v1/payments/json", 17, &rt), ROUTE_METHOD_NOT_ALLOWED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router_decides_route_404_or_405),
		cmocka_unit_test(test_routes_carry_auth_kind_dialect_and_allow),
		cmocka_unit_test(test_router_takes_empty_and_null_input),
		cmocka_unit_test(test_page_routes_by_prefix_and_takes_only_a_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
