/* checkout: the signed hand-off URL and the check of portal callbacks, against HMAC-SHA256 vectors
 * computed elsewhere (the published "quick brown fox" vector, and Python's hmac module). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "payremind/checkout.h"

#define KEY(s) (const unsigned char *)(s), strlen(s)

static void
mac_matches_the_published_vector(void **state)
{
	char hex[CHECKOUT_SIG_HEX + 1];
	const char *msg = "The quick brown fox jumps over the lazy dog";

	(void)state;
	assert_int_equal(checkout_mac_hex(KEY("key"), msg, strlen(msg), hex), 0);
	assert_string_equal(hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
}

/* The portal's view: the query before &signature, exactly as sent, signed with the shared secret
 * (python3: hmac.new(b"portal-secret", query, hashlib.sha256).hexdigest()). */
static void
url_is_encoded_in_order_and_signed(void **state)
{
	struct checkout_handoff h = { "0190f1c2-7d1e-7abc-8def-0123456789ab", "A-1001/\xc3\x89", 123456,
		"CAD", "fr", 1796000000 };
	char url[1024];

	(void)state;
	assert_int_equal(
	    checkout_url("https://portal.aro.example/pay", KEY("portal-secret"), &h, url, sizeof(url)), 0);
	assert_string_equal(url,
	    "https://portal.aro.example/pay?reference=0190f1c2-7d1e-7abc-8def-0123456789ab"
	    "&account_ref=A-1001%2F%C3%89&amount_cents=123456&currency=CAD&lang=fr&expires=1796000000"
	    "&signature=4d1c3b4814ecdbd80d50857fcdc2cf6329c42d85999d18bd25cf62a362217f1b");
}

/* The example of docs/payment-page.md, as a portal would check it. */
static void
url_of_the_documented_example(void **state)
{
	struct checkout_handoff h = { "0190f1c2-7d1e-7abc-8def-0123456789ab", "A-1001", 12345, "CAD", "fr",
		1796000000 };
	static const char body[] = "{\"id\":\"pay-7\",\"reference\":\"0190f1c2-7d1e-7abc-8def-0123456789ab\","
	                           "\"status\":\"paid\",\"amount_cents\":12345}";
	char url[1024];

	(void)state;
	assert_int_equal(
	    checkout_url("https://portal.aro.example/pay", KEY("portal-secret"), &h, url, sizeof(url)), 0);
	assert_string_equal(url,
	    "https://portal.aro.example/pay?reference=0190f1c2-7d1e-7abc-8def-0123456789ab&account_ref=A-1001"
	    "&amount_cents=12345&currency=CAD&lang=fr&expires=1796000000"
	    "&signature=26384b302d1e124044f84f271a00be35ec5025978396573fd1b786e229791d27");
	assert_true(checkout_verify(KEY("portal-secret"), body, strlen(body),
	    "c8f7119cf0e90e91352230a89ae7e6f8769ceb206c533425a97a344096d94a9e"));
}

static void
url_extends_a_query_and_refuses_a_small_buffer(void **state)
{
	struct checkout_handoff h = { "r", "a b&c=d", 1, "CAD", "en", 2 };
	char url[256], small[40];
	const char *q;

	(void)state;
	assert_int_equal(checkout_url("http://127.0.0.1:9/c?shop=aro", KEY("k"), &h, url, sizeof(url)), 0);
	q = strstr(url, "reference=");
	assert_non_null(q);
	assert_memory_equal(url, "http://127.0.0.1:9/c?shop=aro&reference=r&account_ref=a%20b%26c%3Dd&", 67);
	/* the signature covers the query from "reference=" on, as the portal reads it */
	assert_true(checkout_verify(KEY("k"), q, (size_t)(strstr(url, "&signature=") - q),
	    strstr(url, "&signature=") + strlen("&signature=")));
	assert_int_equal(checkout_url("http://127.0.0.1:9/c", KEY("k"), &h, small, sizeof(small)), -1);
}

static void
verify_accepts_only_the_right_mac(void **state)
{
	static const char body[] =
	    "{\"id\":\"pay-1\",\"reference\":\"r\",\"status\":\"paid\",\"amount_cents\":100}";
	char good[CHECKOUT_SIG_HEX + 1], upper[CHECKOUT_SIG_HEX + 1];
	size_t i;

	(void)state;
	assert_int_equal(checkout_mac_hex(KEY("s3cret"), body, strlen(body), good), 0);
	assert_true(checkout_verify(KEY("s3cret"), body, strlen(body), good));
	for (i = 0; i <= CHECKOUT_SIG_HEX; i++)
		upper[i] = (char)(good[i] >= 'a' && good[i] <= 'f' ? good[i] - 32 : good[i]);
	assert_true(checkout_verify(KEY("s3cret"), body, strlen(body), upper));
	assert_false(checkout_verify(KEY("s3cre7"), body, strlen(body), good));     /* other key */
	assert_false(checkout_verify(KEY("s3cret"), body, strlen(body) - 1, good)); /* other body */
	good[10] = good[10] == '0' ? '1' : '0';
	assert_false(checkout_verify(KEY("s3cret"), body, strlen(body), good)); /* one digit off */
	good[CHECKOUT_SIG_HEX - 1] = '\0';
	assert_false(checkout_verify(KEY("s3cret"), body, strlen(body), good)); /* too short */
	assert_false(checkout_verify(KEY("s3cret"), body, strlen(body), ""));
	assert_false(checkout_verify(KEY("s3cret"), body, strlen(body), NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mac_matches_the_published_vector),
		cmocka_unit_test(url_is_encoded_in_order_and_signed),
		cmocka_unit_test(url_of_the_documented_example),
		cmocka_unit_test(url_extends_a_query_and_refuses_a_small_buffer),
		cmocka_unit_test(verify_accepts_only_the_right_mac),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
